package watermark

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKeys(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.key")
	if err := os.WriteFile(good, []byte("  c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seQ==\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(dir, "short.key")
	if err := os.WriteFile(short, []byte("too-short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	k1, err := LoadKey(good)
	if err != nil {
		t.Fatalf("LoadKey: %v", err)
	}
	t.Setenv("WM_TEST_KEY", "c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seQ==")
	k2, err := KeyFromEnv("WM_TEST_KEY")
	if err != nil {
		t.Fatalf("KeyFromEnv: %v", err)
	}
	if k1.ID() != k2.ID() {
		t.Errorf("same secret from file and env gives ids %s and %s", k1.ID(), k2.ID())
	}
	if len(k1.ID()) != 16 {
		t.Errorf("key id %q is not 16 hex digits", k1.ID())
	}
	other, _ := NewKey([]byte("another-secret-key-of-enough-length"))
	if other.ID() == k1.ID() {
		t.Error("different secrets give the same key id")
	}
	for _, s := range []string{k1.String(), fmt.Sprintf("%v %+v %#v", k1, k1, k1)} {
		if strings.Contains(s, "c2VjcmV0") {
			t.Errorf("key printed its secret: %s", s)
		}
	}
	for name, err := range map[string]error{
		"short file":  func() error { _, err := LoadKey(short); return err }(),
		"missing":     func() error { _, err := LoadKey(filepath.Join(dir, "nope")); return err }(),
		"unset env":   func() error { _, err := KeyFromEnv("WM_TEST_KEY_UNSET"); return err }(),
		"empty bytes": func() error { _, err := NewKey(nil); return err }(),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := Embed(NewGray(128, 128, 8), Key{}, Payload{}); err == nil {
		t.Error("embedding with an empty key did not fail")
	}
}

func TestPayloadCode(t *testing.T) {
	cd, err := newCodec()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	soft := func(bits []byte) []float64 {
		s := make([]float64, len(bits))
		for i, b := range bits {
			s[i] = 1 - 2*float64(b)
		}
		return s
	}
	for _, tc := range []struct {
		name       string
		byteErrors int
		ok         bool
	}{
		{"clean", 0, true},
		{"two byte errors", 2, true},
		{"four byte errors (the code's radius)", 4, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for trial := 0; trial < 50; trial++ {
				p := Payload{ID: rng.Uint64() & MaxPayloadID, Version: uint8(rng.Uint32())}
				bits, err := cd.encode(p)
				if err != nil {
					t.Fatal(err)
				}
				s := soft(bits)
				for _, b := range rng.Perm(codeBytes)[:tc.byteErrors] {
					s[b*8+rng.IntN(8)] *= -1
				}
				r, err := cd.decode(s)
				if (err == nil) != tc.ok {
					t.Fatalf("trial %d: decode error %v", trial, err)
				}
				if err == nil && (r.payload != p || r.symbolErrors != tc.byteErrors) {
					t.Fatalf("trial %d: got %v with %d symbol errors, want %v with %d", trial, r.payload, r.symbolErrors, p, tc.byteErrors)
				}
			}
		})
	}
	// Bit errors spread over more bytes than the byte-wise code corrects: the soft-decision
	// search finds the codeword when the wrong bits are the less reliable ones, and gives up
	// beyond its distance limit.
	for _, tc := range []struct {
		flips int
		ok    bool
	}{{6, true}, {9, true}, {osdMaxDistance, true}, {osdMaxDistance + 3, false}} {
		t.Run(fmt.Sprintf("%d bit errors in %d bytes", tc.flips, tc.flips), func(t *testing.T) {
			for trial := 0; trial < 20; trial++ {
				p := Payload{ID: rng.Uint64() & MaxPayloadID, Version: 1}
				bits, err := cd.encode(p)
				if err != nil {
					t.Fatal(err)
				}
				s := soft(bits)
				for i := range s {
					s[i] *= 0.8 + 0.4*rng.Float64()
				}
				for _, b := range rng.Perm(codeBytes)[:tc.flips] {
					s[b*8+rng.IntN(8)] *= -0.3
				}
				r, err := cd.decode(s)
				if (err == nil) != tc.ok {
					t.Fatalf("trial %d: decode error %v", trial, err)
				}
				if err == nil && (r.payload != p || r.bitErrors != tc.flips) {
					t.Fatalf("trial %d: got %v with %d bit errors, want %v with %d", trial, r.payload, r.bitErrors, p, tc.flips)
				}
			}
		})
	}
	// Combined with the pilot, the payload is read from a word whose errors all sit in its
	// least reliable bits, even when there are more of them than plain decoding accepts.
	for trial := 0; trial < 20; trial++ {
		p := Payload{ID: rng.Uint64() & MaxPayloadID, Version: 1}
		bits, err := cd.encode(p)
		if err != nil {
			t.Fatal(err)
		}
		s := soft(bits)
		for b := 0; b < codeBytes; b++ {
			s[b*8+rng.IntN(8)] *= -0.3
		}
		if _, err := cd.decode(s); err == nil {
			t.Fatalf("trial %d: %d spread bit errors decoded by plain decoding", trial, codeBytes)
		}
		r, err := cd.decodeWithin(s, osdCombinedBound)
		if err != nil || r.payload != p || r.bitErrors != codeBytes || r.falseProb > 1e-12 {
			t.Fatalf("trial %d: decodeWithin got %+v, %v; want %v", trial, r, err, p)
		}
	}
	// The product of two independent p-values: its tail t(1 − ln t) against a simulation.
	for _, tc := range []struct{ t, want float64 }{{1, 1}, {0.1, 0.1 * (1 - math.Log(0.1))}, {1e-3, 7.9e-3}} {
		if got := productTail(tc.t); math.Abs(got-tc.want) > 0.01*tc.want {
			t.Errorf("productTail(%g) = %g, want %g", tc.t, got, tc.want)
		}
		n, hits := 200000, 0
		for i := 0; i < n; i++ {
			if rng.Float64()*rng.Float64() <= tc.t {
				hits++
			}
		}
		if sim := float64(hits) / float64(n); math.Abs(sim-tc.want) > 5*math.Sqrt(tc.want/float64(n)) {
			t.Errorf("product of two uniforms ≤ %g in %.4g of draws, productTail says %.4g", tc.t, sim, tc.want)
		}
	}
	if p := osdFalseProb(9); p > 1e-10 {
		t.Errorf("soft-decision false-decode bound at 9 bits %g is over 1e-10", p)
	}
	// Random words never decode: the CRC and the code together reject them.
	for trial := 0; trial < 3000; trial++ {
		s := make([]float64, codedBits)
		for i := range s {
			s[i] = rng.NormFloat64()
		}
		if r, err := cd.decode(s); err == nil {
			t.Fatalf("random word %d decoded to %v", trial, r.payload)
		}
		if r, err := cd.decodeWithin(s, osdCombinedBound); err == nil {
			t.Fatalf("random word %d passed the reliability bound with %v", trial, r.payload)
		}
	}
	if p := maxFalseDecodeProbability(); p > 1e-7 || p <= 0 {
		t.Errorf("false-decode bound %g of a whole decode is not in (0, 1e-7]", p)
	}
	if p := attemptFalseProb(0); p > 1e-11 {
		t.Errorf("false-decode bound %g without erasures is over 1e-11", p)
	}
	if err := (Payload{ID: MaxPayloadID + 1}).Validate(); err == nil {
		t.Error("a 41-bit payload id was accepted")
	}
}

func TestEmbedRejectsBadInput(t *testing.T) {
	key := benchKey(t)
	for _, tc := range []struct {
		name string
		img  *Gray
	}{
		{"too small", NewGray(40, 200, 8)},
		{"too large", NewGray(4100, 64, 8)},
		{"shallow", NewGray(128, 128, 4)},
		{"values beyond bit depth", &Gray{Width: 64, Height: 64, BitDepth: 8, Pix: append(make([]uint16, 64*64-1), 300)}},
		{"short pixel slice", &Gray{Width: 64, Height: 64, BitDepth: 8, Pix: make([]uint16, 10)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Embed(tc.img, key, Payload{ID: 1}); err == nil {
				t.Error("no error")
			}
		})
	}
	if _, err := Detect(NewGray(16, 16, 8), key); err == nil {
		t.Error("detecting in a 16 px image did not fail")
	}
	if _, err := Embed(NewGray(128, 128, 8), key, Payload{ID: MaxPayloadID + 1}); err == nil {
		t.Error("a payload id over 40 bits was embedded")
	}
}

func TestEmbedDeterministic(t *testing.T) {
	key := benchKey(t)
	img := syntheticCT(200, 160, 3)
	a, err := Embed(img, key, Payload{ID: 7, Version: 1})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Embed(img, key, Payload{ID: 7, Version: 1})
	c, _ := Embed(img, key, Payload{ID: 8, Version: 1})
	if !equalPix(a, b) {
		t.Error("the same key and payload gave different pixels")
	}
	if equalPix(a, c) {
		t.Error("different payloads gave the same pixels")
	}
	if equalPix(a, img) {
		t.Error("embedding changed nothing")
	}
}

func equalPix(a, b *Gray) bool {
	if len(a.Pix) != len(b.Pix) {
		return false
	}
	for i := range a.Pix {
		if a.Pix[i] != b.Pix[i] {
			return false
		}
	}
	return true
}

// testImages are the images the quality and robustness tests run on: a sample of the chest
// X-ray corpus (8-bit), the 12-bit MR slice, and synthetic 16-bit CT slices.
func testImages(t testing.TB, nCXR int) (names []string, imgs []*Gray) {
	t.Helper()
	for i, g := range cxrImages(t, nCXR) {
		names = append(names, fmt.Sprintf("cxr%d-%dx%d", i, g.Width, g.Height))
		imgs = append(imgs, g)
	}
	names = append(names, "mr-384-12bit")
	imgs = append(imgs, mrImage(t))
	for _, s := range []int{256, 512} {
		names = append(names, fmt.Sprintf("ct-%d-16bit", s))
		imgs = append(imgs, syntheticCT(s, s, uint64(s)))
	}
	return names, imgs
}

// TestInvisible checks PSNR and SSIM of marked images (100 chest X-rays, the MR and CT
// images; the whole chest X-ray corpus with AUGMENT_LONG=1): both floors hold at the bit
// depth and as displayed, and one of them binds as displayed, so the mark is as strong as
// invisibility allows. It also counts the images
// whose payload does not read back unattacked.
func TestInvisible(t *testing.T) {
	key := benchKey(t)
	n := 100
	if os.Getenv("AUGMENT_LONG") != "" {
		n = 1 << 20 // the whole chest X-ray corpus
	}
	names, imgs := testImages(t, n)
	var lost []string
	for i, g := range imgs {
		t.Run(names[i], func(t *testing.T) {
			m, ok, err := EmbedVerified(g, key, Payload{ID: uint64(i) + 1000, Version: 1}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				lost = append(lost, names[i])
			}
			psnr, _ := PSNR(g, m)
			ssim, _ := SSIM(g, m)
			if psnr < 45 {
				t.Errorf("PSNR %.2f dB < 45", psnr)
			}
			if ssim < 0.99 {
				t.Errorf("SSIM %.4f < 0.99", ssim)
			}
			// As a viewer shows it (the bit depth up to 8 bits, the span of the values
			// above), the floors hold too, and the mark uses the budget: one of them binds.
			dp, _ := PSNRDisplay(g, m)
			ds, _ := SSIMDisplay(g, m)
			if dp < 45 || ds < 0.99 {
				t.Errorf("as displayed: PSNR %.2f dB, SSIM %.4f, under the floors", dp, ds)
			}
			if dp > DefaultPSNR+0.5 && ds > DefaultSSIM+0.002 {
				t.Errorf("as displayed: PSNR %.2f dB and SSIM %.4f both leave room: the mark is weaker than the floors allow", dp, ds)
			}
			t.Logf("PSNR %.2f dB, SSIM %.4f (at the bit depth); %.2f dB, %.4f as displayed", psnr, ssim, dp, ds)
		})
	}
	// The payload reads back unattacked from all but at most 1 % of the images (the
	// self-check's limit, see docs/watermark.md).
	t.Logf("payload lost unattacked on %d of %d images %v", len(lost), len(imgs), lost)
	if len(lost) > len(imgs)/100 {
		t.Errorf("payload lost unattacked on %d of %d images: %v", len(lost), len(imgs), lost)
	}
}

func TestQualityMetrics(t *testing.T) {
	a := syntheticCT(64, 64, 1)
	if p, _ := PSNR(a, a); p < 1e9 {
		t.Errorf("PSNR of identical images = %v", p)
	}
	if s, _ := SSIM(a, a); s < 0.999999 {
		t.Errorf("SSIM of identical images = %v", s)
	}
	b := AddNoise(a, 0.01, 3)
	p, _ := PSNR(a, b)
	lo, hi := fullRange(a)
	want := 20 * math.Log10(a.Max()/(0.01*(hi-lo))) // σ = 1 % of the value range
	if math.Abs(p-want) > 1 {
		t.Errorf("PSNR with 1 %% noise = %.2f, want about %.2f", p, want)
	}
	br := Brightness(a, 0.1)
	if d := float64(br.At(32, 32)) - float64(a.At(32, 32)); math.Abs(d-0.1*(hi-lo)) > 1 {
		t.Errorf("brightness +10 %% moved a mid value by %.0f, want %.0f", d, 0.1*(hi-lo))
	}
	if s, _ := SSIM(a, b); s >= 1 || s <= 0 {
		t.Errorf("SSIM with noise = %v", s)
	}
	if _, err := PSNR(a, NewGray(10, 10, 16)); err == nil {
		t.Error("PSNR of different sizes did not fail")
	}
}

func TestOrientInverse(t *testing.T) {
	g := syntheticCT(70, 50, 2)
	// 90° then 270°, and each flip twice, give the original back.
	for _, tc := range []struct{ a, b int }{{5, 6}, {1, 1}, {2, 2}, {3, 3}, {4, 4}} {
		if !equalPix(Orient(Orient(g, tc.a), tc.b), g) {
			t.Errorf("orientation %d then %d is not the identity", tc.a, tc.b)
		}
	}
	if r := Orient(g, 5); r.Width != 50 || r.Height != 70 || r.At(49, 0) != g.At(0, 0) {
		t.Error("rotate-90 does not rotate clockwise")
	}
}

// TestJPEGRoundTripIs8Bit checks the attack helpers used by the suite.
func TestAttackHelpers(t *testing.T) {
	g := syntheticCT(96, 80, 5)
	j, err := JPEGRoundTrip(g, 75)
	if err != nil || j.BitDepth != 8 || j.Width != 96 {
		t.Fatalf("JPEG round trip: %v %+v", err, j)
	}
	if r := Rescale(g, 0.5); r.Width != 48 || r.Height != 40 {
		t.Errorf("rescale ×0.5 gave %d×%d", r.Width, r.Height)
	}
	if c := CropArea(g, 0.5); c.Width*c.Height < 96*80*45/100 || c.Width*c.Height > 96*80*55/100 {
		t.Errorf("crop keeping 50 %% gave %d×%d", c.Width, c.Height)
	}
	if w := WindowTo8Bit(g, 0.6); w.BitDepth != 8 {
		t.Error("window/level export is not 8-bit")
	}
	var buf bytes.Buffer
	buf.WriteString(FormatTable(Summarize([][]AttackOutcome{{{Attack: "none", Expect: ExpectPayload, Passed: true, PayloadOK: true}}})))
	if !strings.Contains(buf.String(), "| none | payload | 1/1 |") {
		t.Errorf("table: %s", buf.String())
	}
}

// mustPass are the attacks after which the payload must be exact on every test image.
var mustPass = map[string]bool{
	"none": true, "jpeg-q90": true, "jpeg-q75": true, "rescale-x0.5": true, "rescale-x2": true,
	"resize-224x224": true, "pad-square": true, "equalise-8bit": true, "crop-80%-to-224x224": true,
	"crop-75%": true, "blur-1px": true, "brightness+20%": true, "contrast-20%": true,
	"window-level-8bit": true, "rotate-90": true, "rotate-180": true, "rotate-270": true,
	"flip-horizontal": true, "flip-vertical": true, "transpose": true,
}

// suiteFloor is, for the other attacks, the number of the 6 test images on which the
// expectation is met today (see docs/watermark.md for the targets not yet reached); a
// lower count is a regression.
var suiteFloor = map[string]int{
	"jpeg-q90": 6, "jpeg-q75": 6, "jpeg-q50": 6, "rescale-x0.5": 6, "rescale-x0.25": 4,
	"crop-75%": 6, "crop-50%": 6, "noise-2%": 6, "blur-1px": 6, "brightness+20%": 6,
	"brightness-20%": 5, "contrast+20%": 6, "window-level-8bit": 6,
}

func TestRobustnessSuite(t *testing.T) {
	key := benchKey(t)
	names, imgs := testImages(t, 3)
	var runs [][]AttackOutcome
	for i, g := range imgs {
		p := Payload{ID: 0x5A5A5A0000 + uint64(i), Version: 1}
		m, err := Embed(g, key, p)
		if err != nil {
			t.Fatal(err)
		}
		outs, err := RunSuite(t.Context(), m, key, p, Suite())
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range outs {
			if o.Err != "" {
				t.Errorf("%s/%s: %s", names[i], o.Attack, o.Err)
			}
			if mustPass[o.Attack] && !o.Passed {
				t.Errorf("%s/%s: payload not recovered (present=%v score %.1f)", names[i], o.Attack, o.Result.Present, o.Result.Score)
			}
			if o.Result.Payload != nil && *o.Result.Payload != p {
				t.Errorf("%s/%s: wrong payload %v, want %v", names[i], o.Attack, o.Result.Payload, p)
			}
		}
		runs = append(runs, outs)
	}
	rows := Summarize(runs)
	t.Logf("robustness on %d images:\n%s", len(imgs), FormatTable(rows))
	for _, r := range rows {
		if f, ok := suiteFloor[r.Attack]; ok && r.Passed < f {
			t.Errorf("%s: expectation met on %d of %d images, was %d", r.Attack, r.Passed, r.Images, f)
		}
	}
}

// unmarkedSample lists real DICOM images for the false-positive checks: every file when all,
// else an evenly spaced sample of about n.
func unmarkedSample(t *testing.T, all bool, n int) []*Gray {
	t.Helper()
	dir := needData(t, ".")
	files := dicomFiles(t, dir)
	step := 1
	if !all {
		step = max(1, len(files)/n)
	}
	var out []*Gray
	for i := 0; i < len(files); i += step {
		g, err := readDICOMGray(files[i])
		if err != nil || g.Width < MinDetectSide || g.Height < MinDetectSide {
			continue // not an image this loader decodes (compressed, broken, SR...)
		}
		out = append(out, g)
	}
	return out
}

func TestFalsePositives(t *testing.T) {
	key := benchKey(t)
	wrong, _ := NewKey([]byte("a-different-key-0123456789abcdef"))
	all := os.Getenv("AUGMENT_LONG") != ""
	imgs := unmarkedSample(t, all, 25)
	if len(imgs) < 10 {
		t.Fatalf("only %d real images decoded", len(imgs))
	}
	// AUGMENT_FP_SHARD=i/n reads every n-th image from the i-th (0-based), so that the long
	// run can be spread over n processes, one per core.
	if v := os.Getenv("AUGMENT_FP_SHARD"); v != "" {
		var i, n int
		if _, err := fmt.Sscanf(v, "%d/%d", &i, &n); err != nil || n < 1 || i < 0 || i >= n {
			t.Fatalf("AUGMENT_FP_SHARD=%q: want i/n with 0 ≤ i < n", v)
		}
		var part []*Gray
		for j := i; j < len(imgs); j += n {
			part = append(part, imgs[j])
		}
		imgs = part
		t.Logf("shard %d of %d: %d images", i, n, len(imgs))
	}
	lay, err := newLayout(key)
	if err != nil {
		t.Fatal(err)
	}
	df := newDetector(lay, tileBins)
	maxScore, maxPrimary, maxCoarse, minFP := 0.0, 0.0, 0.0, 1.0
	for i, g := range imgs {
		for o := 0; o < 8; o++ {
			og := Orient(g, o)
			r, err := Detect(og, key)
			if err != nil {
				t.Fatalf("image %d: %v", i, err)
			}
			maxPrimary = max(maxPrimary, alignedCandidates(og, df, nil).primary)
			if r.Present || r.Payload != nil {
				t.Errorf("unmarked image %d (%d×%d, %d-bit) orientation %d: present with score %.1f, payload %v", i, g.Width, g.Height, g.BitDepth, o, r.Score, r.Payload)
			}
			maxScore = max(maxScore, r.Score)
			maxCoarse = max(maxCoarse, r.CoarseScore)
			minFP = min(minFP, r.FalsePositive)
		}
	}
	th := PilotThresholds()
	t.Logf("%d unmarked real images × 8 orientations: highest primary aligned read %.2fσ (needs %.2fσ alone)", len(imgs), maxPrimary, th.Primary)
	t.Logf("%d unmarked real images × 8 orientations: highest primary read joined with the coarse read %.2fσ (needs %.2fσ)", len(imgs), maxCoarse, th.Coarse)
	t.Logf("%d unmarked real images × 8 orientations: smallest false-positive probability %.3g (present needs %.0e)", len(imgs), minFP, FalsePositiveTarget)
	t.Logf("%d unmarked real images × 8 orientations: highest score %.2fσ (the pilot alone needs %.2fσ in the primary aligned read, %.2fσ at the other cell sizes, %.2fσ in the other aligned reads of the own orientation, %.2fσ in another orientation, %.2fσ searched)", len(imgs), maxScore, th.Primary, th.Alternate, th.Aligned, th.Oriented, th.Search)
	// The wrong key finds nothing in marked images: six images spread over the sample (every
	// image with AUGMENT_LONG) marked with the key, in all 8 orientations, and three marked
	// images attacked.
	step := max(1, len(imgs)/6)
	if all {
		step = 1
	}
	maxWrong, nMarked, minWrongFP := 0.0, 0, 1.0
	for i := 0; i < len(imgs); i += step {
		g := imgs[i]
		m, err := Embed(g, key, Payload{ID: 0x5A00 + uint64(i), Version: 1})
		if err != nil {
			t.Logf("image %d (%d×%d) not marked: %v", i, g.Width, g.Height, err)
			continue
		}
		nMarked++
		for o := 0; o < 8; o++ {
			r, err := Detect(Orient(m, o), wrong)
			if err != nil {
				t.Fatalf("marked image %d: %v", i, err)
			}
			if r.Present || r.Payload != nil {
				t.Errorf("marked image %d (%d×%d) orientation %d: the wrong key found a mark (score %.1f, payload %v)", i, g.Width, g.Height, o, r.Score, r.Payload)
			}
			maxWrong = max(maxWrong, r.Score, r.CoarseScore)
			minWrongFP = min(minWrongFP, r.FalsePositive)
		}
	}
	if nMarked == 0 {
		t.Fatal("no image of the sample could be marked")
	}
	t.Logf("%d marked real images × 8 orientations read with a wrong key: highest score %.2fσ, smallest false-positive probability %.3g", nMarked, maxWrong, minWrongFP)
	_, marked := testImages(t, 3)
	for i, g := range marked {
		m, err := Embed(g, key, Payload{ID: 99, Version: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range []Attack{Suite()[0], Suite()[1], Suite()[16]} {
			am, _ := a.Apply(m)
			r, err := Detect(am, wrong)
			if err != nil {
				t.Fatal(err)
			}
			if r.Present || r.Payload != nil {
				t.Errorf("image %d, %s: the wrong key found a mark (score %.1f, payload %v)", i, a.Name, r.Score, r.Payload)
			}
		}
	}
}

// TestShapes covers the size range: the smallest images (which use the coarser geometry),
// elongated ones, a flat image and 12-bit data.
func TestShapes(t *testing.T) {
	key := benchKey(t)
	for _, tc := range []struct{ w, h, bits int }{
		{64, 64, 16}, {64, 100, 16}, {100, 100, 12}, {159, 300, 16}, {161, 300, 16}, {1024, 64, 16}, {300, 200, 8},
	} {
		t.Run(fmt.Sprintf("%dx%d-%dbit", tc.w, tc.h, tc.bits), func(t *testing.T) {
			g := syntheticCT(tc.w, tc.h, 9)
			if tc.bits < 16 {
				for i := range g.Pix {
					g.Pix[i] >>= 16 - tc.bits
				}
				g.BitDepth = tc.bits
			}
			p := Payload{ID: 0xABCDE, Version: 2}
			m, err := Embed(g, key, p)
			if err != nil {
				t.Fatal(err)
			}
			r, err := Detect(m, key)
			if err != nil {
				t.Fatal(err)
			}
			if !r.Present || r.Payload == nil || *r.Payload != p {
				t.Errorf("got present=%v payload %v score %.1f", r.Present, r.Payload, r.Score)
			}
		})
	}
	flat := NewGray(300, 200, 12)
	for i := range flat.Pix {
		flat.Pix[i] = 1000
	}
	if r, err := Detect(flat, key); err != nil || r.Present || r.Payload != nil {
		t.Errorf("flat unmarked image: %+v %v", r, err)
	}
}

// TestNoWrongPayload attacks marked chest X-rays harder than the suite (JPEG 40 and 55,
// noise 3 and 4 %, ×0.4, blur 1.6 px), where the code often fails, and checks that a payload,
// when reported, is always the embedded one (AUGMENT_LONG only: about a minute).
func TestNoWrongPayload(t *testing.T) {
	if os.Getenv("AUGMENT_LONG") == "" {
		t.Skip("set AUGMENT_LONG=1 to run the wrong-payload check")
	}
	key := benchKey(t)
	attacks := []struct {
		name  string
		apply func(*Gray, uint64) (*Gray, error)
	}{
		{"jpeg-q40", func(g *Gray, _ uint64) (*Gray, error) { return JPEGRoundTrip(g, 40) }},
		{"jpeg-q55", func(g *Gray, _ uint64) (*Gray, error) { return JPEGRoundTrip(g, 55) }},
		{"noise-3%", func(g *Gray, s uint64) (*Gray, error) { return AddNoise(g, 0.03, s), nil }},
		{"noise-4%", func(g *Gray, s uint64) (*Gray, error) { return AddNoise(g, 0.04, s), nil }},
		{"rescale-x0.4", func(g *Gray, _ uint64) (*Gray, error) { return Rescale(g, 0.4), nil }},
		{"blur-1.6px", func(g *Gray, _ uint64) (*Gray, error) { return Blur(g, 1.6), nil }},
	}
	right, absent := 0, 0
	perAttack := map[string]int{}
	for j, g := range cxrImages(t, 20) {
		for q := uint64(0); q < 3; q++ {
			p := Payload{ID: (uint64(j)*1000 + q) * 7919, Version: 1}
			m, err := Embed(g, key, p)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range attacks {
				am, err := a.apply(m, q)
				if err != nil {
					t.Fatal(err)
				}
				r, err := Detect(am, key)
				if err != nil {
					t.Fatal(err)
				}
				switch {
				case r.Payload == nil:
					absent++
				case *r.Payload != p:
					t.Errorf("image %d, %s: wrong payload %v, want %v (score %.1f, FP %.2g)", j, a.name, r.Payload, p, r.Score, r.FalsePositive)
				default:
					right++
					perAttack[a.name]++
				}
			}
		}
	}
	t.Logf("heavy attacks: %d payloads right, %d not decoded, none wrong", right, absent)
	for _, a := range attacks {
		t.Logf("%s: %d of 60 payloads right", a.name, perAttack[a.name])
	}
}
