package pipeline

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"

	"github.com/medaugment/augment/dicomio"
)

// WritePreview writes a contact sheet of the run's written images (8-bit PNG, up to cols
// per row, each scaled to cell px) so that a person can look at what was made. Images are
// shown through their stored values' full range, as written.
func WritePreview(path string, items []Item, cols, cell int) error {
	var tiles []*image.Gray
	for _, it := range items {
		if it.Err != nil || it.Image == nil || it.Image.Stored == nil {
			continue
		}
		g, err := tile(it.Image.Stored, cell)
		if err != nil {
			return fmt.Errorf("preview %s: %w", it.Row.Path, err)
		}
		tiles = append(tiles, g)
	}
	if len(tiles) == 0 {
		return fmt.Errorf("preview %s: no image to show", path)
	}
	cols = max(1, min(cols, len(tiles)))
	rows := (len(tiles) + cols - 1) / cols
	const gap = 2
	sheet := image.NewGray(image.Rect(0, 0, cols*(cell+gap)-gap, rows*(cell+gap)-gap))
	for i := range sheet.Pix {
		sheet.Pix[i] = 255
	}
	for i, t := range tiles {
		x0, y0 := (i%cols)*(cell+gap), (i/cols)*(cell+gap)
		for y := 0; y < cell; y++ {
			copy(sheet.Pix[(y0+y)*sheet.Stride+x0:], t.Pix[y*t.Stride:y*t.Stride+cell])
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("preview %s: %w", path, err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, sheet); err != nil {
		return fmt.Errorf("preview %s: %w", path, err)
	}
	return dicomio.WriteFileAtomic(path, buf.Bytes())
}

// tile scales one stored greyscale frame to cell×cell (nearest neighbour, aspect kept by
// the square images the models make) with 8-bit values over [0, 2^BitsStored − 1].
func tile(im *dicomio.Image, cell int) (*image.Gray, error) {
	if im.Samples != 1 || im.Rows == 0 || im.Columns == 0 {
		return nil, fmt.Errorf("not a greyscale image")
	}
	top := math.Exp2(float64(im.BitsStored)) - 1
	at := func(i int) float64 {
		switch {
		case im.U8 != nil:
			return float64(im.U8[i])
		case im.U16 != nil:
			return float64(im.U16[i])
		}
		return 0
	}
	g := image.NewGray(image.Rect(0, 0, cell, cell))
	for y := 0; y < cell; y++ {
		sy := y * im.Rows / cell
		for x := 0; x < cell; x++ {
			sx := x * im.Columns / cell
			v := at(sy*im.Columns+sx) / top * 255
			g.SetGray(x, y, color.Gray{Y: uint8(math.Round(math.Max(0, math.Min(255, v))))})
		}
	}
	return g, nil
}
