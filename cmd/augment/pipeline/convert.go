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
	if im.Frames > 1 || im.Signed {
		return nil, fmt.Errorf("watermark: need one unsigned greyscale frame, got %d frames (signed %v)", im.Frames, im.Signed)
	}
	return wmfile.FrameGray(im, 0)
}

// storeGray writes a Gray's values back into the stored values of im.
func storeGray(im *dicomio.Image, g *watermark.Gray) {
	n := im.Rows * im.Columns
	switch {
	case im.U8 != nil:
		for i := 0; i < n; i++ {
			im.U8[i] = uint8(g.Pix[i])
		}
	case im.U16 != nil:
		copy(im.U16[:n], g.Pix)
	}
}

// WatermarkHook is the DICOM writer's watermark step for key: it embeds the payload
// PayloadID(runID, item) in the stored values about to be written and reports the payload
// and key ids for the provenance record. augment generate and augment mark both use it.
func WatermarkHook(key watermark.Key) dicomio.WatermarkFunc {
	return watermarkStep(key, nil)
}

// markCheck is what watermarkStep found out about the mark it embedded.
type markCheck struct {
	// verified: the detector reads the payload back from the marked values.
	verified bool
	// fragile: the mark lives in flat areas at the ends of the value range
	// (watermark.MarkReliance).
	fragile bool
}

// watermarkStep is WatermarkHook that, when check is not nil, also reports there whether
// the detector reads the payload back from the marked values and whether the mark is
// fragile.
func watermarkStep(key watermark.Key, check *markCheck) dicomio.WatermarkFunc {
	return func(stored *dicomio.Image, runID string, item int) (string, string, error) {
		payload := watermark.Payload{ID: PayloadID(runID, item), Version: watermark.PayloadVersion}
		g, err := grayFromStored(stored)
		if err != nil {
			return "", "", err
		}
		var marked *watermark.Gray
		if check != nil {
			marked, check.verified, err = watermark.EmbedVerified(g, key, payload, watermark.Options{})
			if err == nil {
				var rel watermark.Reliance
				if rel, err = watermark.MarkReliance(g, marked, key); err == nil {
					check.fragile = rel.Fragile
				}
			}
		} else {
			marked, err = watermark.Embed(g, key, payload)
		}
		if err != nil {
			return "", "", fmt.Errorf("watermark item %d: %w", item, err)
		}
		storeGray(stored, marked)
		return payload.String(), key.ID(), nil
	}
}
