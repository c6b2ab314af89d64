package watermark

import (
	"errors"
	"math"
)

// DetectAny looks for a mark made with any of keys, for a verifier that holds the keys of
// several sites or years and a file (a PNG export) that does not say which one marked it. It
// runs Detect with each key and keeps the result with the smallest false-positive
// probability, that probability multiplied by the number of keys (a union bound: an image
// marked with none of them is reported present with probability at most
// FalsePositiveTarget, as with one key). A result that no longer meets the target is reported
// absent, without its payload. It stops at the first key whose result meets the target so
// multiplied. With one key it is Detect. Each key costs one detection.
func DetectAny(img *Gray, keys []Key) (Result, error) {
	return bestOfKeys(keys, func(k Key) (Result, error) { return Detect(img, k) })
}

// bestOfKeys is DetectAny with the detection passed in.
func bestOfKeys(keys []Key, detect func(Key) (Result, error)) (Result, error) {
	if len(keys) == 0 {
		return Result{}, errors.New("detect: no key")
	}
	k := float64(len(keys))
	var best Result
	for i, key := range keys {
		r, err := detect(key)
		if err != nil {
			return Result{}, err
		}
		r.FalsePositive = math.Min(1, r.FalsePositive*k)
		if i == 0 || r.FalsePositive < best.FalsePositive {
			best = r
		}
		if r.FalsePositive <= FalsePositiveTarget {
			break
		}
	}
	if best.FalsePositive > FalsePositiveTarget {
		best.Present, best.Payload, best.SymbolErrors, best.BitErrors = false, nil, 0, 0
	}
	return best, nil
}
