package codec

import (
	"bytes"
	"image/jpeg"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkJPEGBaselineVsImageJPEG decodes the chest X-ray corpus (8-bit JPEG baseline) with
// Decode and with Go's image/jpeg in the same run, and reports both throughputs and their ratio
// (speedup > 1: Decode is faster).
func BenchmarkJPEGBaselineVsImageJPEG(b *testing.B) {
	paths, _ := filepath.Glob("../../../shared/data/cxr/train/*/*/CR*.dcm")
	if len(paths) == 0 {
		b.Skip("chest X-ray corpus not found at ../shared/data/cxr/train")
	}
	var insts []testInstance
	var pixels int64
	for _, p := range paths {
		inst, err := loadInstance(p)
		if err != nil || inst.ts != JPEGBaseline {
			continue
		}
		insts = append(insts, inst)
		pixels += int64(inst.info.frameBytes())
	}
	if len(insts) == 0 {
		b.Skip("no JPEG baseline instances in the chest X-ray corpus")
	}
	var ours, peer time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		for _, inst := range insts {
			if _, err := Decode(inst.ts, inst.frames[0], inst.info); err != nil {
				b.Fatal(err)
			}
		}
		ours += time.Since(start)
		start = time.Now()
		for _, inst := range insts {
			if _, err := jpeg.Decode(bytes.NewReader(inst.frames[0])); err != nil {
				b.Fatal(err)
			}
		}
		peer += time.Since(start)
	}
	mb := float64(pixels) * float64(b.N) / 1e6
	b.ReportMetric(float64(len(insts)*b.N)/ours.Seconds(), "frames/s")
	b.ReportMetric(mb/ours.Seconds(), "MB/s")
	b.ReportMetric(mb/peer.Seconds(), "image/jpeg_MB/s")
	b.ReportMetric(peer.Seconds()/ours.Seconds(), "speedup")
}

// BenchmarkDecodeBySyntax reports decode throughput for each compressed syntax of the
// conformance corpus (the 384×384 12-bit MR slice of dcm_qa_ts in 6 syntaxes).
func BenchmarkDecodeBySyntax(b *testing.B) {
	paths, _ := filepath.Glob(filepath.Join(corpusRoot, "dcm_qa_ts", "In", "*.dcm"))
	if len(paths) == 0 {
		b.Skip("dcm_qa_ts corpus not found")
	}
	for _, p := range paths {
		inst, err := loadInstance(p)
		if err != nil {
			continue // native syntaxes
		}
		b.Run(filepath.Base(p)+"_"+inst.ts, func(b *testing.B) {
			b.SetBytes(int64(inst.info.frameBytes()))
			for i := 0; i < b.N; i++ {
				if _, err := Decode(inst.ts, inst.frames[0], inst.info); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkJPEGTurboVsIJG decodes the chest X-ray corpus (8-bit JPEG baseline) with
// libjpeg-turbo (Decode) and with IJG 6b, the library used for these frames before, in the
// same run, and reports both per-frame times and the speed-up.
func BenchmarkJPEGTurboVsIJG(b *testing.B) {
	paths, _ := filepath.Glob("../../../shared/data/cxr/train/*/*/CR*.dcm")
	var insts []testInstance
	for _, p := range paths {
		if inst, err := loadInstance(p); err == nil && inst.ts == JPEGBaseline {
			insts = append(insts, inst)
		}
	}
	if len(insts) == 0 {
		b.Skip("chest X-ray corpus not found at ../shared/data/cxr/train")
	}
	var turbo, ijg time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		for _, inst := range insts {
			if _, err := decodeJPEGWith(inst.frames[0], inst.info, nil, true); err != nil {
				b.Fatal(err)
			}
		}
		turbo += time.Since(start)
		start = time.Now()
		for _, inst := range insts {
			if _, err := decodeJPEGWith(inst.frames[0], inst.info, nil, false); err != nil {
				b.Fatal(err)
			}
		}
		ijg += time.Since(start)
	}
	n := float64(len(insts) * b.N)
	b.ReportMetric(turbo.Seconds()/n*1e6, "turbo_us/frame")
	b.ReportMetric(ijg.Seconds()/n*1e6, "ijg_us/frame")
	b.ReportMetric(ijg.Seconds()/turbo.Seconds(), "speedup")
}
