package watermark

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"os"
	"runtime"
	"testing"
	"time"
)

// benchKey is a fixed key for benchmarks and tests.
func benchKey(tb testing.TB) Key {
	k, err := NewKey([]byte("benchmark-key-0123456789abcdef"))
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// BenchmarkSpeed measures embedding and verification on one core for 512, 2048 and 4096 px
// 16-bit images, against a peer measured in the same run: encoding the same image as PNG.
// Targets at 2048 px: embed < 150 ms, verify < 300 ms.
func BenchmarkSpeed(b *testing.B) {
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	key := benchKey(b)
	for _, size := range []int{512, 2048, 4096} {
		img := syntheticCT(size, size, uint64(size))
		marked, err := Embed(img, key, Payload{ID: 42, Version: 1})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("%dpx", size), func(b *testing.B) {
			var tEmbed, tVerify, tPNG time.Duration
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				if _, err := Embed(img, key, Payload{ID: 42, Version: 1}); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				r, err := Detect(marked, key)
				if err != nil || r.Payload == nil {
					b.Fatalf("verify failed: %+v %v", r, err)
				}
				t2 := time.Now()
				im := image.NewGray16(image.Rect(0, 0, size, size))
				for j, v := range img.Pix {
					im.Pix[2*j], im.Pix[2*j+1] = uint8(v>>8), uint8(v)
				}
				var buf bytes.Buffer
				if err := png.Encode(&buf, im); err != nil {
					b.Fatal(err)
				}
				t3 := time.Now()
				tEmbed += t1.Sub(t0)
				tVerify += t2.Sub(t1)
				tPNG += t3.Sub(t2)
			}
			n := time.Duration(b.N)
			b.ReportMetric(float64((tEmbed / n).Milliseconds()), "embed-ms")
			b.ReportMetric(float64((tVerify / n).Milliseconds()), "verify-ms")
			b.Logf("%d px, one core: embed %v (%.2f× PNG encode), verify %v (%.2f× PNG encode), PNG encode %v",
				size, tEmbed/n, float64(tEmbed)/float64(tPNG), tVerify/n, float64(tVerify)/float64(tPNG), tPNG/n)
		})
	}
}

// BenchmarkEmbedSmall measures Embed on one core on 12 chest X-rays of the corpus (178–256 px,
// where the embedder checks itself, may try other cell sizes and chooses the coarse layer's
// share) against a peer measured in the same run: one embedding of the same images at the
// base cell size and share, with no check and no choice. The ratio is what the self-check
// and the share choice cost:
//
//	go test ./watermark -run '^$' -bench BenchmarkEmbedSmall -benchtime 3x
func BenchmarkEmbedSmall(b *testing.B) {
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	key := benchKey(b)
	imgs := cxrImages(b, 12)
	p := Payload{ID: 0x5A11, Version: 1}
	lay, bits := layoutAndBits(b, key, p)
	fl := floors{DefaultPSNR, DefaultSSIM}
	var tEmbed, tOnce time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, g := range imgs {
			t0 := time.Now()
			if _, err := Embed(g, key, p); err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			if _, err := embedAt(g, lay, bits, geometryFor(g.Width, g.Height), fl, coarseShare); err != nil {
				b.Fatal(err)
			}
			tEmbed += t1.Sub(t0)
			tOnce += time.Since(t1)
		}
	}
	n := time.Duration(b.N * len(imgs))
	b.ReportMetric(float64((tEmbed / n).Milliseconds()), "embed-ms/image")
	b.Logf("12 chest X-rays, one core: Embed %v per image, %.2f× one embedding at the base cell size and share (%v)",
		tEmbed/n, float64(tEmbed)/float64(tOnce), tOnce/n)
}

// BenchmarkSuite runs the robustness suite on a sample of the chest X-ray corpus, the 12-bit
// MR slice and synthetic 16-bit CT slices, and prints the table (docs/watermark.md):
//
//	go test ./watermark -run '^$' -bench BenchmarkSuite -benchtime 1x
//
// Set AUGMENT_WM_SUITE_CXR to change the number of chest X-rays (default 20), and
// AUGMENT_WM_PSNR and AUGMENT_WM_SSIM to mark at other invisibility floors (Options).
func BenchmarkSuite(b *testing.B) {
	n := 20
	if v := os.Getenv("AUGMENT_WM_SUITE_CXR"); v != "" {
		fmt.Sscan(v, &n)
	}
	opt := suiteOptions()
	key := benchKey(b)
	names, imgs := testImages(b, n)
	for i := 0; i < b.N; i++ {
		var runs [][]AttackOutcome
		minPSNR, minSSIM := 1e9, 1.0
		for j, g := range imgs {
			p := Payload{ID: 0x00C0FFEE00 + uint64(j), Version: 1}
			m, err := EmbedWith(g, key, p, opt)
			if err != nil {
				b.Fatalf("%s: %v", names[j], err)
			}
			ps, _ := PSNRDisplay(g, m)
			ss, _ := SSIMDisplay(g, m)
			minPSNR, minSSIM = min(minPSNR, ps), min(minSSIM, ss)
			outs, err := RunSuite(context.Background(), m, key, p, Suite())
			if err != nil {
				b.Fatal(err)
			}
			runs = append(runs, outs)
		}
		fmt.Printf("%d images (%d chest X-rays, 8-bit; MR 384 px 12-bit; CT 256 and 512 px 16-bit); lowest PSNR %.2f dB, lowest SSIM %.4f as displayed (at most the bit depth's)\n%s",
			len(imgs), len(imgs)-3, minPSNR, minSSIM, FormatTable(Summarize(runs)))
	}
}

// suiteOptions are the floors the robustness benchmarks mark at: the defaults, or
// AUGMENT_WM_PSNR and AUGMENT_WM_SSIM (docs/watermark.md, *Strength*).
func suiteOptions() Options {
	var opt Options
	if v := os.Getenv("AUGMENT_WM_PSNR"); v != "" {
		fmt.Sscan(v, &opt.PSNR)
	}
	if v := os.Getenv("AUGMENT_WM_SSIM"); v != "" {
		fmt.Sscan(v, &opt.SSIM)
	}
	return opt
}

// BenchmarkTrainingResizes marks the suite's images (the chest X-ray sample, the MR and CT
// slices) and prints, per operation a training pipeline applies, on how many the payload is
// read: resizes to fixed sizes whatever the aspect, and crops resized (docs/watermark.md,
// *Stretched images*):
//
//	go test ./watermark -run '^$' -bench BenchmarkTrainingResizes -benchtime 1x
func BenchmarkTrainingResizes(b *testing.B) {
	key := benchKey(b)
	names, imgs := testImages(b, 20)
	ops := []struct {
		name string
		f    func(*Gray) *Gray
	}{
		{"resize-128x128", func(g *Gray) *Gray { return Resize(g, 128, 128) }},
		{"resize-224x224", func(g *Gray) *Gray { return Resize(g, 224, 224) }},
		{"resize-256x256", func(g *Gray) *Gray { return Resize(g, 256, 256) }},
		{"resize-512x512", func(g *Gray) *Gray { return Resize(g, 512, 512) }},
		{"resize-512x384", func(g *Gray) *Gray { return Resize(g, 512, 384) }},
		{"resize-300x200", func(g *Gray) *Gray { return Resize(g, 300, 200) }},
		{"crop-80%-to-224x224", func(g *Gray) *Gray { return Resize(CropArea(g, 0.8), 224, 224) }},
		{"crop-60%-to-256x256", func(g *Gray) *Gray { return Resize(CropArea(g, 0.6), 256, 256) }},
	}
	for i := 0; i < b.N; i++ {
		read := make([]int, len(ops))
		for j, g := range imgs {
			p := Payload{ID: 0x00C0FFEE00 + uint64(j), Version: 1}
			m, err := Embed(g, key, p)
			if err != nil {
				b.Fatalf("%s: %v", names[j], err)
			}
			for k, op := range ops {
				r, err := Detect(op.f(m), key)
				if err != nil {
					b.Fatalf("%s/%s: %v", names[j], op.name, err)
				}
				if r.Payload != nil && *r.Payload == p {
					read[k]++
				}
			}
		}
		for k, op := range ops {
			fmt.Printf("%-22s payload read on %d of %d images\n", op.name, read[k], len(imgs))
		}
	}
}
