package watermark

import "math"

// The tail of the detector's statistics under the null. Every score the detector compares
// with a threshold (the pilot's correlation at one scale, orientation and shift, the coarse
// layer's read, their join) is, for a fixed image and a random key, a weighted sum of
// independent random signs Σ a_i·ε_i with Σ a_i² = 1. Hoeffding's inequality bounds its
// tail by exp(−z²/2); earlier versions used that. The sharpest bound of the Gaussian form
// holds too: P(Σ a_i·ε_i ≥ z) ≤ c·Q(z) for every z and every such weight vector, with Q the
// standard normal tail and c = 1/(4·Q(√2)) ≈ 3.1787, the smallest constant for which it
// holds (Bentkus & Dzindzalieta, "A tight Gaussian bound for weighted sums of Rademacher
// random variables", Bernoulli 21(2), 2015; two equal weights attain it at z = √2). In the
// far tail Q(z) ≈ exp(−z²/2)/(z·√(2π)), so at the detector's thresholds (6.4–9σ) it is
// 5–7 times smaller than Hoeffding's, which lowers every threshold by 0.2–0.25σ at the same
// false-positive target.

// signTailConst is c = 1/(4·Q(√2)) = 1/(2·erfc(1)) (TestSignTailConstant).
const signTailConst = 3.178655565886997

// normalTail is Q(z) = P(η ≥ z) for a standard normal η, accurate in the far tail.
func normalTail(z float64) float64 {
	return math.Erfc(z/math.Sqrt2) / 2
}

// signTail bounds the probability that the best of n scores, each a normalised weighted sum
// of independent random signs, reaches z: min(1, n·c·Q(z)) (a union bound over the n).
func signTail(n, z float64) float64 {
	return math.Min(1, n*signTailConst*normalTail(z))
}

// signThreshold is the score z at which signTail(n, z) = p: the threshold of a family of n
// hypotheses given p of the false-positive budget.
func signThreshold(n, p float64) float64 {
	return invertTail(func(z float64) float64 { return signTail(n, z) }, p)
}

// joinedTail bounds the tail of the coarse layer's join (max(0, z_P) + z_C)/√2 over n
// primary bases: the join of the two sums as they are is again a normalised sum of
// independent signs (c·Q(z)), and where z_P is negative and replaced by 0 the event needs
// z_C ≥ √2·z (c·Q(√2·z)).
func joinedTail(n, z float64) float64 {
	return math.Min(1, n*signTailConst*(normalTail(z)+normalTail(math.Sqrt2*z)))
}

// joinedThreshold is the join's score z at which joinedTail(n, z) = p.
func joinedThreshold(n, p float64) float64 {
	return invertTail(func(z float64) float64 { return joinedTail(n, z) }, p)
}

// invertTail finds, by bisection on [0, 40], the smallest z with tail(z) ≤ p for a tail
// that falls with z.
func invertTail(tail func(float64) float64, p float64) float64 {
	lo, hi := 0.0, 40.0
	for hi-lo > 1e-12 {
		m := (lo + hi) / 2
		if tail(m) > p {
			lo = m
		} else {
			hi = m
		}
	}
	return hi
}
