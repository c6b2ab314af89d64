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

// Where the weights are known, sharper bounds hold. The detector knows them at the
// hypotheses it reads in full (the best aligned read of each family and every candidate of
// the search): the pilot's per-cell reads G_c at that point. For those weights Chernoff's bound is
// P(Σ ε_c·G_c ≥ t) ≤ inf_{λ>0} exp(Σ ln cosh(λ·G_c) − λ·t), since E[exp(λ·ε·G)] = cosh(λ·G).
// It is never above Hoeffding's, and on a marked image it is far below the Gaussian form:
// there most cells agree with the key, t is close to its largest possible value Σ|G_c|, and
// a sum of bounded terms thins out towards that end much faster than a normal tail (the
// self-normalised score z = t/√(Σ G_c²) is at most √128 ≈ 11.3, while the probability that
// random signs agree with 128 cells is 2⁻¹²⁸). The weights are what the image holds at that
// hypothesis, whatever the key, so each hypothesis's bound is a valid p-value under the null
// over keys, and N times the smallest of those read is a valid bound for a family of N
// hypotheses whichever of them are read (a union bound over all N).

// chernoffLogTail returns ln inf_{λ>0} exp(Σ ln cosh(λ·a_c) − λ·t), the logarithm of
// Chernoff's bound on P(Σ ε_c·a_c ≥ t) for independent random signs ε_c; 0 when t ≤ 0.
func chernoffLogTail(a []float64, t float64) float64 {
	if t <= 0 {
		return 0
	}
	sumAbs, maxAbs, nonzero := 0.0, 0.0, 0
	for _, v := range a {
		v = math.Abs(v)
		sumAbs += v
		maxAbs = max(maxAbs, v)
		if v > 0 {
			nonzero++
		}
	}
	if t >= sumAbs*(1-1e-12) {
		// Only the signs that agree with every term reach it: probability 2⁻ⁿ, the limit of
		// the bound as λ grows (and nothing at all above Σ|a|).
		if t > sumAbs*(1+1e-9) {
			return math.Inf(-1)
		}
		return -float64(nonzero) * math.Ln2
	}
	// The exponent f(λ) is convex with f′(λ) = Σ|a|·tanh(λ|a|) − t, which rises from −t to
	// Σ|a| − t > 0: find its root. Any λ gives a valid bound, so the precision of the root
	// only decides how sharp it is.
	slope := func(l float64) float64 {
		s := -t
		for _, v := range a {
			v = math.Abs(v)
			s += v * math.Tanh(l*v)
		}
		return s
	}
	lo, hi := 0.0, 1/maxAbs
	for slope(hi) < 0 && hi < 1e12 {
		lo, hi = hi, 2*hi
	}
	// Newton's steps (f′ is concave, so a step from either side lands at or below the root
	// and the steps then climb to it), bisection wherever a step would leave the bracket.
	l := hi
	for i := 0; i < 100 && hi-lo > 1e-12*hi; i++ {
		s, c := -t, 0.0
		for _, v := range a {
			v = math.Abs(v)
			th := math.Tanh(l * v)
			s += v * th
			c += v * v * (1 - th*th)
		}
		if s < 0 {
			lo = l
		} else {
			hi = l
		}
		next := l - s/c
		if c <= 0 || next <= lo || next >= hi {
			next = (lo + hi) / 2
		}
		if math.Abs(next-l) <= 1e-13*l {
			break
		}
		l = next
	}
	f := -l * t
	for _, v := range a {
		f += logCosh(l * v)
	}
	return math.Min(0, f)
}

// logCosh is ln cosh(x), computed without overflow.
func logCosh(x float64) float64 {
	x = math.Abs(x)
	return x + math.Log1p(math.Exp(-2*x)) - math.Ln2
}

// readTail bounds, for a family of n hypotheses, the tail at the best of some reads, each
// given by its per-cell terms v (each G_c times the key's sign there, so that Σ v is the
// read's correlation): the smallest over the reads of the Gaussian form at the read's score
// z = Σ v/√(Σ v²) and Chernoff's bound for its weights, and at the read where that is
// smallest, the tail counted over its weights (exactLogTail), all times n. Every one is a
// valid bound at its read, so the smallest is one for the family.
func readTail(n float64, reads ...[]float64) float64 {
	best, bestV, bestT := 0.0, []float64(nil), 0.0
	for _, v := range reads {
		t, q := 0.0, 0.0
		for _, x := range v {
			t += x
			q += x * x
		}
		if q <= 0 || t <= 0 {
			continue
		}
		l := min(math.Log(signTail(1, t/math.Sqrt(q))), chernoffLogTail(v, t))
		if bestV == nil || l < best {
			best, bestV, bestT = l, v, t
		}
	}
	if bestV == nil {
		return 1
	}
	best = min(best, exactLogTail(bestV, bestT, exactLevels))
	return math.Min(1, n*math.Exp(best))
}

// exactLevels is the rounding of the weights for exactLogTail: 512 steps of the largest
// weight cost about 1.5 ms on 128 pilot cells and lose under 1 % of the correlation.
const exactLevels = 512

// exactLogTail returns the logarithm of an upper bound on P(Σ ε_c·a_c ≥ t) for independent
// random signs ε_c that is exact up to rounding the weights to levels steps of the largest
// one: with a_c = q_c·δ + e_c (q_c = ⌊|a_c|/δ⌋, 0 ≤ e_c < δ), the event implies Σ ε_c·q_c ≥
// (t − Σ e_c)/δ, whose probability is counted exactly over the subset sums of the q_c
// (Σ ε_c·q_c = 2·Σ_{ε_c=+1} q_c − Σ q_c). All terms are non-negative, so the count keeps its
// relative precision however small the tail.
func exactLogTail(a []float64, t float64, levels int) float64 {
	if t <= 0 {
		return 0
	}
	maxAbs := 0.0
	for _, v := range a {
		maxAbs = max(maxAbs, math.Abs(v))
	}
	if maxAbs == 0 {
		return math.Inf(-1)
	}
	d := maxAbs / float64(levels)
	q := make([]int, len(a))
	total, slack := 0, 0.0
	for i, v := range a {
		q[i] = int(math.Abs(v) / d)
		total += q[i]
		slack += math.Abs(v) - float64(q[i])*d
	}
	need := int(math.Ceil(((t-slack)/d + float64(total)) / 2))
	if need <= 0 {
		return 0
	}
	if need > total {
		return math.Inf(-1)
	}
	// Σ_{ε=+1} q ≥ need is Σ_{ε=−1} q ≤ total − need, and the set of minus signs is a random
	// subset as much as the set of plus signs, so only sums up to k = total − need are
	// counted: dist[s] = P(subset sum = s), built item by item (descending, so that each
	// item is counted once), the mass above k dropped since sums only grow.
	k := total - need
	dist := make([]float64, k+1)
	dist[0] = 1
	hi := 0
	for _, w := range q {
		for s := min(hi, k); s >= 0; s-- {
			p := dist[s] / 2
			dist[s] = p
			if s+w <= k {
				dist[s+w] += p
			}
		}
		hi += w
	}
	tail := 0.0
	for _, p := range dist {
		tail += p
	}
	return math.Log(tail)
}
