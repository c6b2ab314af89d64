package watermark

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

// TestSignTailConstant: c is 1/(4·Q(√2)), and the bound is attained by two equal weights at
// √2 (P(ε₁+ε₂ ≥ 2) = 1/4), so no smaller constant would do.
func TestSignTailConstant(t *testing.T) {
	if want := 1 / (4 * normalTail(math.Sqrt2)); math.Abs(signTailConst-want) > 1e-12 {
		t.Fatalf("signTailConst %.15f, want %.15f", signTailConst, want)
	}
	if got := signTail(1, math.Sqrt2); math.Abs(got-0.25) > 1e-12 {
		t.Errorf("bound at √2 = %.15f, want the attained 0.25", got)
	}
}

// signSums lists Σ a_i·ε_i over all 2ⁿ sign patterns, sorted.
func signSums(a []float64) []float64 {
	sums := []float64{0}
	for _, w := range a {
		next := make([]float64, 0, 2*len(sums))
		for _, s := range sums {
			next = append(next, s+w, s-w)
		}
		sums = next
	}
	sort.Float64s(sums)
	return sums
}

// exactSignTail is P(Σ a_i·ε_i ≥ z) from the sorted sums of all sign patterns.
func exactSignTail(sums []float64, z float64) float64 {
	i := sort.SearchFloat64s(sums, z-1e-12)
	return float64(len(sums)-i) / float64(len(sums))
}

// binomialSignTail is P(Σ ε_i/√n ≥ z) for n equal weights: k plus signs give (2k−n)/√n.
func binomialSignTail(n int, z float64) float64 {
	p := 0.0
	for k := 0; k <= n; k++ {
		if float64(2*k-n)/math.Sqrt(float64(n)) >= z-1e-12 {
			lg, _ := math.Lgamma(float64(n + 1))
			lk, _ := math.Lgamma(float64(k + 1))
			lnk, _ := math.Lgamma(float64(n - k + 1))
			p += math.Exp(lg - lk - lnk - float64(n)*math.Ln2)
		}
	}
	return p
}

func unit(a []float64) []float64 {
	s := 0.0
	for _, v := range a {
		s += v * v
	}
	out := make([]float64, len(a))
	for i, v := range a {
		out[i] = v / math.Sqrt(s)
	}
	return out
}

// TestSignTailBound checks the bound the detector uses against exact tails of normalised
// sums of random signs: it is never below them, for equal, geometric and random weights, and
// it is well under Hoeffding's exp(−z²/2) where the thresholds are.
func TestSignTailBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	random := make([]float64, 18)
	for i := range random {
		random[i] = rng.NormFloat64()
	}
	geometric := make([]float64, 16)
	for i := range geometric {
		geometric[i] = math.Pow(0.8, float64(i))
	}
	weights := []struct {
		name string
		a    []float64
	}{
		{"one", []float64{1}},
		{"two equal", unit([]float64{1, 1})},
		{"three equal", unit([]float64{1, 1, 1})},
		{"one large, two small", unit([]float64{2, 1, 1})},
		{"geometric", unit(geometric)},
		{"random", unit(random)},
	}
	for _, w := range weights {
		sums := signSums(w.a)
		for z := -1.0; z <= 4.5; z += 0.01 {
			exact, bound := exactSignTail(sums, z), signTail(1, z)
			if bound < exact-1e-12 {
				t.Errorf("%s, z=%.2f: bound %.6g under the exact tail %.6g", w.name, z, bound, exact)
			}
		}
	}
	// Equal weights, as many as the pilot's cells and more, far into the tail.
	for _, n := range []int{2, 16, 128, 1000, 4096} {
		for z := 0.0; z <= math.Min(math.Sqrt(float64(n)), 12); z += 0.01 {
			exact, bound := binomialSignTail(n, z), signTail(1, z)
			if bound < exact*(1-1e-9) {
				t.Errorf("%d equal weights, z=%.2f: bound %.6g under the exact tail %.6g", n, z, bound, exact)
			}
		}
	}
	// At the thresholds the bound is several times smaller than Hoeffding's.
	for _, z := range []float64{6.4, 7, 8, 9} {
		if r := math.Exp(-z*z/2) / signTail(1, z); r < 4 {
			t.Errorf("z=%.1f: Hoeffding over the bound %.2f, want at least 4", z, r)
		}
	}
}

// TestSignThreshold: the thresholds invert the tails, and are lower than Hoeffding's at the
// same budget.
func TestSignThreshold(t *testing.T) {
	for _, c := range []struct{ n, p float64 }{{1, 2.5e-10}, {3, 5e-11}, {112, 5e-11}, {3.4e7, 5e-11}} {
		z := signThreshold(c.n, c.p)
		if got := signTail(c.n, z); math.Abs(got-c.p) > 1e-6*c.p {
			t.Errorf("n=%g p=%g: threshold %.4f gives %.6g", c.n, c.p, z, got)
		}
		hoeffding := math.Sqrt(2 * math.Log(c.n/c.p))
		if !(z < hoeffding-0.15 && z > hoeffding-0.4) {
			t.Errorf("n=%g p=%g: threshold %.4f, Hoeffding's %.4f", c.n, c.p, z, hoeffding)
		}
		zj := joinedThreshold(c.n, c.p)
		if got := joinedTail(c.n, zj); math.Abs(got-c.p) > 1e-6*c.p || zj < z {
			t.Errorf("n=%g p=%g: joined threshold %.4f gives %.6g (plain %.4f)", c.n, c.p, zj, got, z)
		}
	}
}

// TestJoinedTailEmpirical: the coarse join (max(0, z_P) + z_C)/√2 of two independent
// normalised sums of random signs stays within joinedTail over many draws, including where
// z_P is negative and replaced by 0.
func TestJoinedTailEmpirical(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	a := unit([]float64{1, 1, 1, 1})
	b := unit([]float64{3, 1, 1, 1, 1, 1})
	draw := func(w []float64) float64 {
		s := 0.0
		for _, v := range w {
			if rng.IntN(2) == 0 {
				s += v
			} else {
				s -= v
			}
		}
		return s
	}
	const trials = 200000
	zs := []float64{0.5, 1, 1.5, 2, 2.5}
	hits := make([]int, len(zs))
	for i := 0; i < trials; i++ {
		j := (max(0, draw(a)) + draw(b)) / math.Sqrt2
		for k, z := range zs {
			if j >= z-1e-12 {
				hits[k]++
			}
		}
	}
	for k, z := range zs {
		freq := float64(hits[k]) / trials
		// Three binomial deviations of slack for the sampling error.
		if bound := joinedTail(1, z); freq > bound+3*math.Sqrt(bound/trials) {
			t.Errorf("z=%.1f: join reached it in %.4f of draws, bound %.4f", z, freq, bound)
		}
	}
}

// TestExactLogTail: the counted tail is never below the exact one and, with fine levels,
// close to it; Chernoff's bound is never below it either.
func TestExactLogTail(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 9))
	for trial := 0; trial < 20; trial++ {
		a := make([]float64, 14)
		for i := range a {
			a[i] = math.Abs(rng.NormFloat64()) + 0.01
		}
		sums := signSums(a)
		for _, frac := range []float64{0.1, 0.4, 0.7, 0.95} {
			tot := 0.0
			for _, v := range a {
				tot += v
			}
			z := frac * tot
			exact := exactSignTail(sums, z)
			got := math.Exp(exactLogTail(a, z, 4096))
			ch := math.Exp(chernoffLogTail(a, z))
			if got < exact*(1-1e-9) {
				t.Errorf("trial %d t=%.3f: counted %g below exact %g", trial, z, got, exact)
			}
			if got > 4*exact+1e-12 {
				t.Errorf("trial %d t=%.3f: counted %g far above exact %g", trial, z, got, exact)
			}
			if ch < exact*(1-1e-9) {
				t.Errorf("trial %d t=%.3f: Chernoff %g below exact %g", trial, z, ch, exact)
			}
		}
	}
}

// TestReadTailEqualWeights: for 128 equal weights (the pilot's size) the counted tail
// matches the binomial tail and Chernoff's bound is above it but far below the Gaussian form
// where the detector's thresholds are: the gain the sharper bounds give a marked image.
func TestReadTailEqualWeights(t *testing.T) {
	const n = 128
	a := make([]float64, n)
	for i := range a {
		a[i] = 1
	}
	for _, z := range []float64{6, 7, 8, 9} {
		exact := binomialSignTail(n, z)
		tt := z * math.Sqrt(n)
		got := math.Exp(exactLogTail(a, tt, exactLevels))
		ch := math.Exp(chernoffLogTail(a, tt))
		gauss := signTail(1, z)
		if got < exact*(1-1e-9) || got > exact*(1+1e-6) {
			t.Errorf("z=%g: counted %g, binomial %g", z, got, exact)
		}
		if ch < exact {
			t.Errorf("z=%g: Chernoff %g under the binomial tail %g", z, ch, exact)
		}
		if z >= 8 && ch > gauss/4 {
			t.Errorf("z=%g: Chernoff %g not well under the Gaussian form %g", z, ch, gauss)
		}
		if p := readTail(10, a[:0:0]); p != 1 {
			t.Errorf("no read: %g, want 1", p)
		}
		if p := readTail(10, a); math.Abs(p-10*math.Exp(exactLogTail(a, n, exactLevels))) > 1e-30 {
			t.Errorf("all cells agreeing: %g", p)
		}
		t.Logf("z=%g: binomial %.3g, counted %.3g, Chernoff %.3g, Gaussian form %.3g", z, exact, got, ch, gauss)
	}
}
