package watermark

import (
	"fmt"
	"math"
	"testing"
)

// TestDetectAny checks that a mark is found among several keys with its own key's id and
// that an unmarked image is absent under all.
func TestDetectAny(t *testing.T) {
	img := syntheticCT(256, 256, 3)
	keys := make([]Key, 3)
	for i := range keys {
		k, err := NewKey(fmt.Appendf(nil, "detect-any-test-key-%d-0123456789", i))
		if err != nil {
			t.Fatal(err)
		}
		keys[i] = k
	}
	p := Payload{ID: 42, Version: PayloadVersion}
	marked, err := Embed(img, keys[2], p)
	if err != nil {
		t.Fatal(err)
	}
	r, err := DetectAny(marked, keys)
	if err != nil {
		t.Fatal(err)
	}
	one, _ := Detect(marked, keys[2])
	if !r.Present || r.Payload == nil || *r.Payload != p || r.KeyID != keys[2].ID() || r.FalsePositive != min(1, 3*one.FalsePositive) {
		t.Errorf("marked with the third key: %+v (alone: FP %g)", r, one.FalsePositive)
	}
	if r, _ := DetectAny(img, keys); r.Present || r.Payload != nil {
		t.Errorf("unmarked: %+v", r)
	}
	if _, err := DetectAny(img, nil); err == nil {
		t.Error("no key: no error")
	}
}

// TestBestOfKeysUnionBound checks the bound over keys: a result that meets the target with one
// key only just is absent, without its payload, when it is one of three; and the search stops
// at the first key that meets the target so bounded.
func TestBestOfKeysUnionBound(t *testing.T) {
	keys := make([]Key, 3)
	for i := range keys {
		keys[i], _ = NewKey(fmt.Appendf(nil, "union-bound-test-key-%d-0123456789", i))
	}
	p := Payload{ID: 7, Version: PayloadVersion}
	fps := map[string]float64{keys[0].ID(): 0.5, keys[1].ID(): 0.5 * FalsePositiveTarget, keys[2].ID(): 0.9}
	calls := 0
	fake := func(k Key) (Result, error) {
		calls++
		return Result{Present: fps[k.ID()] <= FalsePositiveTarget, Payload: &p, BitErrors: 3, FalsePositive: fps[k.ID()], KeyID: k.ID()}, nil
	}
	r, err := bestOfKeys(keys, fake)
	if err != nil {
		t.Fatal(err)
	}
	if r.Present || r.Payload != nil || r.BitErrors != 0 || r.KeyID != keys[1].ID() || math.Abs(r.FalsePositive/(1.5*FalsePositiveTarget)-1) > 1e-9 {
		t.Errorf("just inside the target with one key of three: %+v", r)
	}
	fps[keys[1].ID()] = 1e-20
	calls = 0
	r, _ = bestOfKeys(keys, fake)
	if !r.Present || r.Payload == nil || math.Abs(r.FalsePositive/3e-20-1) > 1e-9 || calls != 2 {
		t.Errorf("a strong mark under the second key: %+v after %d detections, want present after 2", r, calls)
	}
	r, _ = bestOfKeys(keys[1:2], fake)
	if !r.Present || r.FalsePositive != 1e-20 {
		t.Errorf("one key: %+v, want Detect's result as it is", r)
	}
}
