package unclip

import (
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestSlerp(t *testing.T) {
	a := []float32{1, 0, 0}
	b := []float32{0, 2, 0}
	tests := []struct {
		name  string
		a, b  []float32
		theta float64
		want  []float32
	}{
		{"start", a, b, 0, a},
		{"end", a, b, 1, b},
		// Ω = 90°: weights sin(45°)/sin(90°) on the raw vectors.
		{"middle", a, b, 0.5, []float32{float32(math.Sqrt2 / 2), float32(math.Sqrt2), 0}},
		{"parallel falls back to lerp", []float32{1, 1}, []float32{2, 2}, 0.25, []float32{1.25, 1.25}},
		{"zero vector lerps", []float32{0, 0}, []float32{2, 4}, 0.5, []float32{1, 2}},
	}
	for _, tc := range tests {
		got, err := Slerp(tc.a, tc.b, tc.theta)
		if err != nil {
			t.Fatal(err)
		}
		for i := range got {
			if math.Abs(float64(got[i]-tc.want[i])) > 1e-6 {
				t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
				break
			}
		}
	}
	// The angle to a grows linearly with θ (an element-wise acos would not give this).
	u := unit([]float32{0.3, -0.7, 0.2, 0.5})
	v := unit([]float32{-0.4, 0.1, 0.9, 0.2})
	omega := math.Acos(cosine(u, v))
	for _, th := range []float64{0.1, 0.3, 0.6, 0.9} {
		z, _ := Slerp(u, v, th)
		if got := math.Acos(cosine(u, z)); math.Abs(got-th*omega) > 1e-5 {
			t.Errorf("θ=%g: angle %g, want %g", th, got, th*omega)
		}
	}
	if _, err := Slerp(u, v[:2], 0.5); err == nil {
		t.Error("different lengths must be an error")
	}
}

func unit(v []float32) []float32 {
	n := norm(v)
	out := make([]float32, len(v))
	for i := range v {
		out[i] = float32(float64(v[i]) / n)
	}
	return out
}

func TestTextDiffDirection(t *testing.T) {
	zi := []float32{3, 4}
	d, err := TextDiffDirection(zi, []float32{1, 1}, []float32{1, 0})
	if err != nil {
		t.Fatal(err)
	}
	if d[0] != 0 || math.Abs(float64(d[1])-5) > 1e-6 {
		t.Fatalf("direction %v, want [0 5] (unit z_t − z_t0 at |z_i| = 5)", d)
	}
	if _, err := TextDiffDirection(zi, []float32{1, 1}, []float32{1, 1}); err == nil {
		t.Fatal("equal caption embeddings must be an error")
	}
}

func TestSampleCategorical(t *testing.T) {
	// p = softmax([ln 1, ln 2, ln 3, ln 4]) = [0.1 0.2 0.3 0.4].
	logits := []float32{0, float32(math.Log(2)), float32(math.Log(3)), float32(math.Log(4))}
	tests := []struct {
		topP, u float64
		want    int
	}{
		{1, 0.05, 3}, {1, 0.39, 3}, {1, 0.41, 2}, {1, 0.69, 2}, {1, 0.71, 1}, {1, 0.95, 0},
		// top-p 0.6 keeps {3, 2} (0.7 ≥ 0.6), renormalised to 4/7, 3/7.
		{0.6, 0.5, 3}, {0.6, 0.58, 2}, {0.6, 0.999, 2},
		{0.35, 0.99, 3}, // the first entry alone reaches 0.35
	}
	for _, tc := range tests {
		if got := SampleCategorical(logits, 1, tc.topP, tc.u); got != tc.want {
			t.Errorf("top-p %g u %g: %d, want %d", tc.topP, tc.u, got, tc.want)
		}
	}
	// Temperature → 0 leaves the two tied maxima, the lower index first in the order.
	if got := SampleCategorical([]float32{1, 5, 5, 2}, 0.01, 1, 0.3); got != 1 {
		t.Errorf("low temperature, u 0.3: %d, want 1", got)
	}
	if got := SampleCategorical([]float32{1, 5, 5, 2}, 0.01, 1, 0.7); got != 2 {
		t.Errorf("low temperature, u 0.7: %d, want 2", got)
	}
}

func TestDotTokenProbs(t *testing.T) {
	hist := []float64{10, 30, 20, 40} // total 100: cumulative 10, 40, 60 → median bin 2
	p := DotTokenProbs(hist)
	want := []float64{0, 0, 21.0 / 62, 41.0 / 62}
	for i := range p {
		if math.Abs(p[i]-want[i]) > 1e-12 {
			t.Fatalf("probs %v, want %v", p, want)
		}
	}
	if inverseCDF(p, 0.3) != 2 || inverseCDF(p, 0.4) != 3 || inverseCDF(p, 1) != 3 {
		t.Fatal("inverse CDF over the upper half is wrong")
	}
	for _, tc := range []struct {
		v    float64
		want int
	}{{-1, 0}, {-0.999, 0}, {0, 512}, {0.999, 1023}, {1, 1023}, {5, 1023}, {-5, 0}} {
		if got := Quantize(tc.v, -1, 1, 1024); got != tc.want {
			t.Errorf("Quantize(%g) = %d, want %d", tc.v, got, tc.want)
		}
	}
}

func TestNoiseSources(t *testing.T) {
	a, _ := NewSeededNoise(42).Normal([]int{2, 3})
	b, _ := NewSeededNoise(42).Normal([]int{2, 3})
	c, _ := NewSeededNoise(43).Normal([]int{2, 3})
	if len(a) != 6 {
		t.Fatalf("%d values", len(a))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatal("same seed, different draws")
		}
	}
	if a[0] == c[0] {
		t.Fatal("different seeds, same draw")
	}
	u, _ := NewSeededNoise(1).Uniform(1000)
	for _, v := range u {
		if v < 0 || v >= 1 {
			t.Fatalf("uniform %g outside [0,1)", v)
		}
	}
	r := &ReplayNoise{Normals: []NoiseTensor{{Shape: []int{1, 2}, Data: []float64{1, 2}}}, Uniforms: []NoiseTensor{{Shape: []int{2}, Data: []float64{0.5, 0.25}}}}
	if _, err := r.Normal([]int{2, 1}); err == nil || !strings.Contains(err.Error(), "shape") {
		t.Fatalf("shape mismatch: %v", err)
	}
	if v, err := r.Normal([]int{1, 2}); err != nil || v[1] != 2 {
		t.Fatalf("replay: %v %v", v, err)
	}
	if _, err := r.Normal([]int{1, 2}); err == nil || !strings.Contains(err.Error(), "past") {
		t.Fatalf("past the end: %v", err)
	}
	if _, err := r.Uniform(3); err == nil {
		t.Fatal("uniform count mismatch must be an error")
	}
	if n, u := r.Remaining(); n != 0 || u != 1 {
		t.Fatalf("remaining %d %d", n, u)
	}
}

func TestResizeAreaAndPreprocess(t *testing.T) {
	// 3×3 → 2×2 adaptive average pooling: windows rows/cols [0,2) and [1,3).
	img := Tensor{Shape: []int{1, 1, 3, 3}, Data: []float32{1, 2, 3, 4, 5, 6, 7, 8, 9}}
	got, err := ResizeArea(img, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{3, 4, 6, 7}
	for i := range want {
		if got.Data[i] != want[i] {
			t.Fatalf("ResizeArea = %v, want %v", got.Data, want)
		}
	}
	spec := ImageSpec{Size: 2, Channels: 1, Percentiles: []float64{0, 100}, Range: [2]float64{-1, 1}}
	// 2 rows × 4 cols of values 0..7, window [0, 8]: padded to 4×4 with a zero row above and below.
	vals := []float32{0, 1, 2, 3, 4, 5, 6, 7}
	out, err := spec.PreprocessModality(vals, 2, 4, &Window{Center: 4, Width: 8}, false)
	if err != nil {
		t.Fatal(err)
	}
	// Output pixel (0,0) averages rows 0–1, cols 0–1: pad 0,0 and values 0,1 → (0+0+0+1/8)/4.
	w00 := (0.0 + 0 + 0 + 1.0/8) / 4
	if math.Abs(float64(out.Data[0])-(-1+2*w00)) > 1e-6 || !equalShape(out.Shape, []int{1, 1, 2, 2}) {
		t.Fatalf("preprocess = %v %v, want first %g", out.Shape, out.Data, -1+2*w00)
	}
	inv, _ := spec.PreprocessModality(vals, 2, 4, &Window{Center: 4, Width: 8}, true)
	// MONOCHROME1: values inverted before padding, the pad stays 0.
	w00inv := (0.0 + 0 + 1 + 7.0/8) / 4
	if math.Abs(float64(inv.Data[0])-(-1+2*w00inv)) > 1e-6 {
		t.Fatalf("MONOCHROME1 first pixel %g, want %g", inv.Data[0], -1+2*w00inv)
	}
	// Percentile window: 0 and 100 % map the extremes to the range ends.
	pw, _ := ImageSpec{Size: 4, Channels: 1, Percentiles: []float64{0, 100}}.PreprocessModality([]float32{5, 6, 7, 8, 9, 10, 11, 13, 15, 20, 30, 40, 50, 60, 70, 80}, 4, 4, nil, false)
	if pw.Data[0] != -1 || pw.Data[15] != 1 {
		t.Fatalf("percentile window: %v", pw.Data)
	}
	if _, err := spec.PreprocessModality(vals, 3, 3, nil, false); err == nil {
		t.Fatal("wrong pixel count must be an error")
	}
	if got := Percentile([]float64{1, 2, 3, 4}, 50); got != 2.5 {
		t.Fatalf("Percentile = %g, want 2.5 (numpy linear)", got)
	}
}

func TestFindORTLibrary(t *testing.T) {
	t.Setenv(ORTLibEnv, "")
	root, ok := moduleRoot(".")
	if !ok {
		t.Fatal("no go.mod above the package")
	}
	copyAt := filepath.Join(root, "third_party", "onnxruntime-"+ORTVersion, "libonnxruntime.so."+ORTVersion)
	if fileExists(copyAt) {
		got, err := FindORTLibrary("")
		if err != nil || got != copyAt {
			t.Fatalf("FindORTLibrary = %q, %v; want the module's copy %s", got, err, copyAt)
		}
	}
	if _, err := FindORTLibrary("/nonexistent/libonnxruntime.so"); err == nil || !strings.Contains(err.Error(), "/nonexistent/") {
		t.Fatalf("explicit missing library: %v", err)
	}
	t.Setenv(ORTLibEnv, "/nonexistent/lib.so")
	if _, err := FindORTLibrary(""); err == nil || !strings.Contains(err.Error(), ORTLibEnv) {
		t.Fatalf("missing $%s library: %v", ORTLibEnv, err)
	}
}

// TestORTBadLibrary loads a file that is not ONNX Runtime in a child process (the environment is
// process-global) and expects a clear error naming it and the version needed.
func TestORTBadLibrary(t *testing.T) {
	if os.Getenv("UNCLIP_BAD_ORT_CHILD") == "1" {
		_, err := InitORT("")
		if err == nil {
			os.Exit(3)
		}
		os.Stdout.WriteString(err.Error())
		os.Exit(0)
	}
	fake := filepath.Join(t.TempDir(), "libonnxruntime.so.1.24.1")
	if err := os.WriteFile(fake, []byte("not a shared library"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestORTBadLibrary$")
	cmd.Env = append(os.Environ(), "UNCLIP_BAD_ORT_CHILD=1", ORTLibEnv+"="+fake)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v (%s)", err, out)
	}
	if msg := string(out); !strings.Contains(msg, fake) || !strings.Contains(msg, ORTVersion) {
		t.Fatalf("error %q does not name the library and the version", msg)
	}
}
