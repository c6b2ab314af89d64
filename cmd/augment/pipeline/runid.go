package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/medaugment/augment/watermark"
)

// The run id is what a run's UIDs, synthetic Patient IDs, file names and watermark payload ids
// are derived from. A default that depended on the seed alone gave every run with the default
// seed the same ones: two runs with other prompts, merged into one dataset, then held two
// different images under one SOP Instance UID, and one payload id pointed at two manifest
// rows. The defaults below add a digest of everything that decides the images, so that a rerun
// of the same command still writes the same files and any other run writes others.

// DefaultRunID names a generation run "run-SEED-DIGEST", DIGEST being 8 hex digits of a
// SHA-256 over the bundle, the key id, the writer, sampling and watermark strength settings,
// and the requests, each source image by its content (its size and first MiB: a file changed
// in place changes the run, a copy elsewhere does not).
func DefaultRunID(cfg Config, reqs []Request) (string, error) {
	type request struct {
		Request
		SourceSHA256 []string // the sources by content: the same image elsewhere is the same input
	}
	rs := make([]request, len(reqs))
	for i, r := range reqs {
		rs[i].Request = r
		rs[i].Request.Sources = nil
		for _, p := range r.Sources {
			sum, err := fileSHA256(p)
			if err != nil {
				return "", fmt.Errorf("run id: %w", err)
			}
			rs[i].SourceSHA256 = append(rs[i].SourceSHA256, sum)
		}
	}
	// The mark's strength changes the pixels; at the defaults it is left out, so that runs
	// made before it could be set keep their ids.
	markPSNR, markSSIM := cfg.Mark.PSNR, cfg.Mark.SSIM
	if markPSNR == watermark.DefaultPSNR {
		markPSNR = 0
	}
	if markSSIM == watermark.DefaultSSIM {
		markSSIM = 0
	}
	doc, err := json.Marshal(struct {
		Bundle, KeyID, UIDRoot, PatientIDPrefix  string
		Seed                                     uint64
		BitDepth                                 int
		PriorSteps, DecoderSteps, UpsamplerSteps int
		DecoderGuidance, Eta                     float64
		ARPrior, NoUpsample                      bool
		Requests                                 []request
		MarkPSNR                                 float64 `json:",omitempty"`
		MarkSSIM                                 float64 `json:",omitempty"`
	}{cfg.BundleSHA256, cfg.Key.ID(), cfg.UIDRoot, cfg.PatientIDPrefix, cfg.Seed, cfg.BitDepth,
		cfg.PriorSteps, cfg.DecoderSteps, cfg.UpsamplerSteps, cfg.DecoderGuidance, cfg.Eta,
		cfg.UseARPrior, cfg.NoUpsample, rs, markPSNR, markSSIM})
	if err != nil {
		return "", fmt.Errorf("run id: %w", err)
	}
	return fmt.Sprintf("run-%d-%s", cfg.Seed, digest8("augment-run-v1", doc)), nil
}

// DefaultBatchRunID names a batch that marks existing images (augment watermark embed, augment
// mark) "KIND-DIGEST", DIGEST being 8 hex digits of a SHA-256 over the key id (empty without a
// key) and the inputs' contents in order (size and first MiB). Payload ids, and augment mark's
// new UIDs, are derived from the run id: the same files marked again get the same ones, other
// files other ones.
func DefaultBatchRunID(kind, keyID string, paths []string) string {
	doc := []byte(keyID)
	for _, p := range paths {
		sum, err := fileSHA256(p)
		if err != nil {
			// An unreadable file fails on its own later; it still counts by its name.
			sum = "unreadable:" + p
		}
		doc = append(doc, 0)
		doc = append(doc, sum...)
	}
	return kind + "-" + digest8("augment-batch-run-v1", doc)
}

func digest8(label string, doc []byte) string {
	h := sha256.New()
	h.Write([]byte(label))
	h.Write([]byte{0})
	h.Write(doc)
	return hex.EncodeToString(h.Sum(nil)[:4])
}

// fileSHA256 digests a file for a run id: its size and its first MiB, which holds a DICOM
// file's header (its UIDs) and the start of any image's pixels, so that a batch of large
// files is not read twice before the work starts.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "%d\x00", st.Size())
	if _, err := io.CopyN(h, f, 1<<20); err != nil && err != io.EOF {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
