package pipeline

import (
	"fmt"

	"github.com/medaugment/augment/dicomio"
	"github.com/medaugment/augment/watermark"
)

// grayFromStored views the stored values of a single-frame greyscale image as a watermark
// Gray (unsigned, BitsStored deep).
func grayFromStored(im *dicomio.Image) (*watermark.Gray, error) {
	if im.Samples != 1 || im.Frames > 1 {
		return nil, fmt.Errorf("watermark: need one greyscale frame, got %d frames of %d samples", im.Frames, im.Samples)
	}
	n := im.Rows * im.Columns
	g := watermark.NewGray(im.Columns, im.Rows, im.BitsStored)
	switch {
	case im.U8 != nil:
		for i := 0; i < n; i++ {
			g.Pix[i] = uint16(im.U8[i])
		}
	case im.U16 != nil:
		copy(g.Pix, im.U16[:n])
	default:
		return nil, fmt.Errorf("watermark: stored values must be unsigned 8- or 16-bit integers")
	}
	return g, nil
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
	return func(stored *dicomio.Image, runID string, item int) (string, string, error) {
		payload := watermark.Payload{ID: PayloadID(runID, item), Version: watermark.PayloadVersion}
		g, err := grayFromStored(stored)
		if err != nil {
			return "", "", err
		}
		marked, err := watermark.Embed(g, key, payload)
		if err != nil {
			return "", "", fmt.Errorf("watermark item %d: %w", item, err)
		}
		storeGray(stored, marked)
		return payload.String(), key.ID(), nil
	}
}
