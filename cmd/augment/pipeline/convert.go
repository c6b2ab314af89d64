package pipeline

import (
	"fmt"

	"github.com/medaugment/augment/dicomio"
	"github.com/medaugment/augment/watermark"
	"github.com/medaugment/augment/watermark/wmfile"
)

// grayFromStored views the stored values of a single-frame greyscale image as a watermark
// Gray. The writer's stored values are unsigned, so they go through unchanged.
func grayFromStored(im *dicomio.Image) (*watermark.Gray, error) {
	if im.Frames > 1 {
		return nil, fmt.Errorf("watermark: need one frame, got %d", im.Frames)
	}
	return frameGray(im, 0)
}

// frameGray views frame i of the stored values of a greyscale image as a watermark Gray.
func frameGray(im *dicomio.Image, i int) (*watermark.Gray, error) {
	if im.Signed {
		return nil, fmt.Errorf("watermark: need unsigned stored values")
	}
	return wmfile.FrameGray(im, i)
}

// storeFrame writes a Gray's values back into frame i of the stored values of im.
func storeFrame(im *dicomio.Image, i int, g *watermark.Gray) {
	n := im.Rows * im.Columns
	off := i * n
	switch {
	case im.U8 != nil:
		for j := 0; j < n; j++ {
			im.U8[off+j] = uint8(g.Pix[j])
		}
	case im.U16 != nil:
		copy(im.U16[off:off+n], g.Pix)
	}
}

// WatermarkHook is the DICOM writer's watermark step for key: it embeds the payload
// PayloadID(runID, item) in the stored values about to be written, at the strength opt sets,
// and reports the payload and key ids and the floors for the provenance record. augment mark
// uses it; generate and watermark embed use CheckedWatermarkHook.
func WatermarkHook(key watermark.Key, opt watermark.Options) dicomio.WatermarkFunc {
	return watermarkStep(key, opt, nil)
}

// MarkCheck is what the watermark step found out about the mark it embedded (in every frame).
type MarkCheck struct {
	// Verified: the detector reads the payload back from the marked values.
	Verified bool
	// Fragile: the mark lives in flat areas at the ends of the value range
	// (watermark.MarkReliance); RangeEndShare is the largest share of a frame's pixels there.
	Fragile       bool
	RangeEndShare float64
}

// CheckedWatermarkHook is WatermarkHook that also reports in check whether the payload reads
// back and whether the mark is fragile, measured on the stored values themselves.
func CheckedWatermarkHook(key watermark.Key, opt watermark.Options, check *MarkCheck) dicomio.WatermarkFunc {
	return watermarkStep(key, opt, check)
}

// frameError names the frame that could not be marked when the instance has several.
func frameError(frames, i int, err error) error {
	if frames > 1 {
		return fmt.Errorf("frame %d of %d: %w", i+1, frames, err)
	}
	return err
}

// watermarkStep is WatermarkHook that, when check is not nil, also reports there whether
// the detector reads the payload back from the marked values and whether the mark is
// fragile.
func watermarkStep(key watermark.Key, opt watermark.Options, check *MarkCheck) dicomio.WatermarkFunc {
	return func(stored *dicomio.Image, runID string, item int) (dicomio.WatermarkRecord, error) {
		payload := watermark.Payload{ID: PayloadID(runID, item), Version: watermark.PayloadVersion}
		// Every frame of a multi-frame instance (a cine loop, an enhanced CT) carries the
		// instance's payload, so that any frame exported alone still says where it came from.
		if check != nil {
			check.Verified = true
		}
		for i := 0; i < max(1, stored.Frames); i++ {
			g, err := frameGray(stored, i)
			if err != nil {
				return dicomio.WatermarkRecord{}, frameError(stored.Frames, i, err)
			}
			var marked *watermark.Gray
			if check != nil {
				var ok bool
				marked, ok, err = watermark.EmbedVerified(g, key, payload, opt)
				if err == nil {
					var rel watermark.Reliance
					if rel, err = watermark.MarkReliance(g, marked, key); err == nil {
						check.Verified = check.Verified && ok
						check.Fragile = check.Fragile || rel.Fragile
						check.RangeEndShare = max(check.RangeEndShare, rel.RangeEndShare)
					}
				}
			} else {
				marked, err = watermark.EmbedWith(g, key, payload, opt)
			}
			if err != nil {
				return dicomio.WatermarkRecord{}, frameError(stored.Frames, i, err)
			}
			storeFrame(stored, i, marked)
		}
		fl := opt.WithDefaults()
		return dicomio.WatermarkRecord{PayloadID: payload.String(), KeyID: key.ID(), PSNRFloor: fl.PSNR, SSIMFloor: fl.SSIM}, nil
	}
}
