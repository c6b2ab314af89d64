package dicomio

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// readBenchPython times pydicom (dcmread + pixel_array, GDCM for JPEG) over the files listed
// on stdin, after one warm-up pass, and prints the seconds of the timed pass.
const readBenchPython = `
import sys, time, pydicom
files = sys.stdin.read().split("\n")
files = [f for f in files if f]
def one_pass():
    for f in files:
        d = pydicom.dcmread(f)
        if "PixelData" in d:
            d.pixel_array
one_pass()
t = time.perf_counter()
one_pass()
print(time.perf_counter() - t)
`

// BenchmarkScanDecode measures scan+decode throughput (metadata, reports and pixels) on the
// chest X-ray training split as `augment scan` runs it (Scan with its pool of 2 workers), the
// same on one goroutine, and the same work done by pydicom (one process) in the same run; it
// reports files/s, MB/s and the speed-ups over pydicom.
func BenchmarkScanDecode(b *testing.B) {
	root := filepath.Join(sharedCXR, "train")
	var files []string
	var size int64
	err := WalkFiles(b.Context(), []string{root}, func(p string) error {
		if strings.HasSuffix(p, ".dcm") {
			st, err := os.Stat(p)
			if err != nil {
				return err
			}
			files = append(files, p)
			size += st.Size()
		}
		return nil
	})
	if err != nil || len(files) == 0 {
		b.Skipf("chest X-ray corpus missing under %s (%v)", root, err)
	}
	opt := ScanOptions{Decode: true}
	run := func() {
		for _, p := range files {
			if rec := ScanFile(p, opt); rec.Err != nil {
				b.Fatal(rec.Err)
			}
		}
	}
	scan := func() {
		err := Scan(b.Context(), files, ScanOptions{Decode: true, Workers: 2}, func(rec Record) error { return rec.Err })
		if err != nil {
			b.Fatal(err)
		}
	}
	run() // warm the page cache, as pydicom's warm-up pass does
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		scan()
	}
	goSec := time.Since(start).Seconds() / float64(b.N)
	b.StopTimer()
	start = time.Now()
	for i := 0; i < b.N; i++ {
		run()
	}
	seqSec := time.Since(start).Seconds() / float64(b.N)
	b.ReportMetric(float64(len(files))/goSec, "files/s")
	b.ReportMetric(float64(size)/goSec/1e6, "MB/s")

	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import pydicom, gdcm").Run(); err != nil {
		b.Skipf("go: %d files in %.3fs (%.0f files/s, %.1f MB/s); no comparison: pydicom with GDCM is missing (apt python3-pydicom python3-gdcm)",
			len(files), goSec, float64(len(files))/goSec, float64(size)/goSec/1e6)
	}
	cmd := exec.Command(py, "-c", readBenchPython)
	cmd.Stdin = strings.NewReader(strings.Join(files, "\n"))
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		b.Fatalf("pydicom run: %v: %s", err, stderr.String())
	}
	pySec, err := strconv.ParseFloat(strings.TrimSpace(out.String()), 64)
	if err != nil {
		b.Fatalf("pydicom output %q: %v", out.String(), err)
	}
	ratio := pySec / goSec
	b.ReportMetric(ratio, "x_pydicom")
	b.ReportMetric(pySec/seqSec, "x_pydicom_1goroutine")
	fmt.Printf("scan+decode %d CXR files (%.1f MB): augment scan (2 workers) %.3fs (%.0f files/s, %.1f MB/s); "+
		"one goroutine %.3fs (%.0f files/s); pydicom+GDCM %.3fs (%.0f files/s, %.1f MB/s): %.1fx pydicom (%.1fx on one goroutine; target 5x)\n",
		len(files), float64(size)/1e6, goSec, float64(len(files))/goSec, float64(size)/goSec/1e6,
		seqSec, float64(len(files))/seqSec, pySec, float64(len(files))/pySec, float64(size)/pySec/1e6, ratio, pySec/seqSec)
}
