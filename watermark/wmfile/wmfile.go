// Package wmfile reads and writes the image files that the watermark commands work on —
// PNG, TIFF, JPEG and DICOM — as watermark.Gray pixel arrays, and runs the commands' work on
// them (embed, verify, the robustness suite and its report). Package watermark itself knows
// nothing of file formats; DICOM goes through package dicomio. Marked PNG and TIFF files
// record their mark (MarkRecord) in a tEXt chunk and in the ImageDescription tag; both are
// added to the standard encoders' output by hand (record.go), since image/png and
// golang.org/x/image/tiff write no custom chunks or tags.
package wmfile

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/image/tiff"

	"github.com/medaugment/augment/dicomio"
	"github.com/medaugment/augment/watermark"
)

// Format is an image file format.
type Format string

// The formats handled.
const (
	PNG   Format = "png"
	TIFF  Format = "tiff"
	JPEG  Format = "jpeg"
	DICOM Format = "dicom"
)

// File is one decoded image file.
type File struct {
	Path   string
	Format Format
	// Image is the first frame as stored values (signed DICOM values offset to unsigned;
	// colour images as luma).
	Image *watermark.Gray
	// SyntheticData is the DICOM Synthetic Data attribute (0008,001C): "YES", "NO" or ""
	// (absent, and always "" for PNG, TIFF and JPEG, which carry no such tag).
	SyntheticData string
	// Frames is the number of frames in the file (1 for PNG, TIFF and JPEG).
	Frames int
	// Record is a marked PNG's or TIFF's record of its mark (MarkRecord), nil when it has
	// none.
	Record *MarkRecord
}

// Sniff tells the format from the first bytes of a file. DICOM's "DICM" at offset 128 is
// checked first: the 128-byte preamble before it is free, and dual-format files put a TIFF
// header there.
func Sniff(head []byte) (Format, error) {
	switch {
	case len(head) >= 132 && string(head[128:132]) == "DICM":
		return DICOM, nil
	case bytes.HasPrefix(head, []byte("\x89PNG\r\n\x1a\n")):
		return PNG, nil
	case bytes.HasPrefix(head, []byte("II*\x00")), bytes.HasPrefix(head, []byte("MM\x00*")):
		return TIFF, nil
	case bytes.HasPrefix(head, []byte{0xFF, 0xD8, 0xFF}):
		return JPEG, nil
	}
	return "", ErrUnknownFormat
}

// ErrUnknownFormat is Sniff's error for content that starts like none of the formats read.
var ErrUnknownFormat = errors.New("not a PNG, TIFF, JPEG or DICOM (Part 10) file")

// SniffFile is Sniff on the first bytes of the file at path.
func SniffFile(path string) (Format, error) {
	fh, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	head := make([]byte, 132)
	n, err := io.ReadFull(fh, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", err
	}
	return Sniff(head[:n])
}

// IsImageFile reports whether the file at path starts like a PNG, TIFF, JPEG or DICOM Part 10
// file. It returns an error only when the file cannot be read.
func IsImageFile(path string) (bool, error) {
	_, err := SniffFile(path)
	if errors.Is(err, ErrUnknownFormat) {
		return false, nil
	}
	return err == nil, err
}

// Read decodes an image file. Panics in decoders become errors naming the file.
func Read(path string) (f *File, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, fmt.Errorf("read %s: decoder failed: %v", path, r)
		}
	}()
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	format, err := Sniff(data)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	f = &File{Path: path, Format: format, Frames: 1}
	switch format {
	case PNG, TIFF, JPEG:
		var im image.Image
		switch format {
		case PNG:
			im, err = png.Decode(bytes.NewReader(data))
			if err == nil {
				f.Record, _ = readPNGRecord(data) // a damaged record is no record: the pixels decide
			}
		case TIFF:
			im, err = tiff.Decode(bytes.NewReader(data))
			if err == nil {
				f.Record, _ = readTIFFRecord(data)
			}
		default:
			im, err = jpeg.Decode(bytes.NewReader(data))
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %s: %w", path, format, err)
		}
		f.Image = FromImage(im)
	case DICOM:
		in, img, err := dicomio.ReadImage(path, dicomio.ReadOptions{})
		if errors.Is(err, dicomio.ErrNoPixelData) || (err == nil && img == nil) {
			// A report or a presentation state beside a study's images.
			return nil, fmt.Errorf("read %s: %w", path, dicomio.ErrNotImage)
		}
		if err != nil {
			return nil, err // ReadImage's error names the file
		}
		g, err := frameForReading(img, 0)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		f.Image, f.Frames = g, max(1, img.Frames)
		f.SyntheticData = strings.ToUpper(strings.TrimSpace(in.SyntheticData))
	}
	return f, nil
}

// FromImage converts a decoded image to greyscale stored values: 16-bit for 16-bit
// greyscale sources, 8-bit otherwise (colour as Rec. 601 luma).
func FromImage(im image.Image) *watermark.Gray {
	b := im.Bounds()
	switch src := im.(type) {
	case *image.Gray16:
		g := watermark.NewGray(b.Dx(), b.Dy(), 16)
		for y := 0; y < b.Dy(); y++ {
			for x := 0; x < b.Dx(); x++ {
				g.Pix[y*g.Width+x] = src.Gray16At(b.Min.X+x, b.Min.Y+y).Y
			}
		}
		return g
	case *image.Gray:
		g := watermark.NewGray(b.Dx(), b.Dy(), 8)
		for y := 0; y < b.Dy(); y++ {
			for x := 0; x < b.Dx(); x++ {
				g.Pix[y*g.Width+x] = uint16(src.GrayAt(b.Min.X+x, b.Min.Y+y).Y)
			}
		}
		return g
	}
	g := watermark.NewGray(b.Dx(), b.Dy(), 8)
	for y := 0; y < b.Dy(); y++ {
		for x := 0; x < b.Dx(); x++ {
			c := color.GrayModel.Convert(im.At(b.Min.X+x, b.Min.Y+y)).(color.Gray)
			g.Pix[y*g.Width+x] = uint16(c.Y)
		}
	}
	return g
}

// ToImage converts stored values to an image: 8-bit and lower as image.Gray, deeper as
// image.Gray16 holding the stored values unscaled.
func ToImage(g *watermark.Gray) image.Image {
	r := image.Rect(0, 0, g.Width, g.Height)
	if g.BitDepth <= 8 {
		im := image.NewGray(r)
		for i, v := range g.Pix {
			im.Pix[i] = uint8(v)
		}
		return im
	}
	im := image.NewGray16(r)
	for i, v := range g.Pix {
		im.Pix[2*i], im.Pix[2*i+1] = uint8(v>>8), uint8(v)
	}
	return im
}

// frameForReading is frame i as greyscale for detection: FrameGray's stored values, or for
// colour (8 or 16 bits, RGB or YBR_FULL) the luma, as PNG and JPEG colour are read
// (FromImage). A viewer that saves a greyscale image as an RGB secondary capture keeps the
// mark in all three channels alike.
func frameForReading(img *dicomio.Image, i int) (*watermark.Gray, error) {
	if img.Samples != 3 || (img.U8 == nil && img.U16 == nil) {
		return FrameGray(img, i)
	}
	n := img.Rows * img.Columns
	at := func(j int) uint32 { return uint32(img.U16[j]) }
	bits, total := 16, len(img.U16)
	if img.U8 != nil {
		at = func(j int) uint32 { return uint32(img.U8[j]) }
		bits, total = 8, len(img.U8)
	}
	if i < 0 || i >= max(1, img.Frames) || total < (i+1)*n*3 {
		return nil, fmt.Errorf("frame %d of %d", i, img.Frames)
	}
	off := i * n * 3
	g := watermark.NewGray(img.Columns, img.Rows, bits)
	switch strings.ToUpper(img.Photometric) {
	case "RGB":
		for j := range n {
			r, gr, b := at(off+3*j), at(off+3*j+1), at(off+3*j+2)
			g.Pix[j] = uint16((19595*r + 38470*gr + 7471*b + 1<<15) >> 16) // Rec. 601, as color.GrayModel
		}
	case "YBR_FULL":
		for j := range n {
			g.Pix[j] = uint16(at(off + 3*j)) // Y is the luma
		}
	default:
		return nil, fmt.Errorf("photometric interpretation %s with 3 samples: only greyscale, RGB and YBR_FULL are read", img.Photometric)
	}
	return g, nil
}

// FrameGray extracts frame i of a single-sample DICOM image as stored values (signed values
// offset by 2^(BitsStored−1)).
func FrameGray(img *dicomio.Image, i int) (*watermark.Gray, error) {
	if img.Samples > 1 {
		return nil, fmt.Errorf("image has %d samples per pixel; only greyscale is watermarked", img.Samples)
	}
	bits := img.BitsStored
	if bits < 1 || bits > 16 {
		return nil, fmt.Errorf("bits stored %d is outside 1..16", bits)
	}
	n := img.Rows * img.Columns
	if i < 0 || i >= max(1, img.Frames) {
		return nil, fmt.Errorf("frame %d of %d", i, img.Frames)
	}
	g := watermark.NewGray(img.Columns, img.Rows, bits)
	off := i * n
	shift := 0
	if img.Signed {
		shift = 1 << (bits - 1)
	}
	m := int(g.Max())
	switch {
	case img.U8 != nil:
		for j := 0; j < n; j++ {
			g.Pix[j] = uint16(min(m, int(img.U8[off+j])))
		}
	case img.U16 != nil:
		for j := 0; j < n; j++ {
			g.Pix[j] = uint16(min(m, int(img.U16[off+j])))
		}
	case img.I8 != nil:
		for j := 0; j < n; j++ {
			g.Pix[j] = uint16(max(0, min(m, int(img.I8[off+j])+shift)))
		}
	case img.I16 != nil:
		for j := 0; j < n; j++ {
			g.Pix[j] = uint16(max(0, min(m, int(img.I16[off+j])+shift)))
		}
	default:
		return nil, errors.New("pixel data is not 8- or 16-bit integers")
	}
	return g, nil
}

// EmbedOptions say where and how EmbedFile writes.
type EmbedOptions struct {
	// OutDir receives the marked files.
	OutDir string
	// Mark sets the mark's strength (its invisibility floors) for PNG, TIFF and JPEG inputs;
	// for DICOM the watermark hook holds them (pipeline.CheckedWatermarkHook).
	Mark watermark.Options
	// Payload is embedded in PNG, TIFF and JPEG inputs.
	Payload watermark.Payload
	// DICOM marks DICOM inputs (its OutDir is set from OutDir): its Synthetic.Watermark hook
	// embeds the mark and chooses the payload from Synthetic.RunID and Item.
	DICOM dicomio.MarkOptions
	// Item numbers the file within the run.
	Item int
	// Replace marks an input that already carries a decodable mark of the key, replacing its
	// payload; without it such an input is refused (ErrMarked).
	Replace bool
	// Outputs, when set, holds the batch's outputs, so that two inputs never write the same
	// file: a PNG or TIFF whose name an earlier input took is written as <stem>-<item>, and a
	// DICOM input gets a new UID of its own (dicomio.MarkOptions.Outputs).
	Outputs *dicomio.OutputSet
}

// Embedded describes one marked file.
type Embedded struct {
	Input   string `json:"input"`
	Output  string `json:"output"`
	Format  Format `json:"format"`
	Payload string `json:"payload_id"`
	KeyID   string `json:"key_id"`
	// Verified is true when the detector reads the payload back from the marked image; a
	// false one is a mark too weak for this image's texture to identify it by its pixels (the
	// image is marked as well as invisibility allows). For DICOM the watermark hook measures
	// it, so its caller sets it (pipeline.CheckedWatermarkHook).
	Verified bool `json:"verified"`
	// RepeatsUIDOf names the earlier input of the batch whose DICOM source had the same SOP
	// Instance UID; this output got a new UID of its own.
	RepeatsUIDOf string `json:"repeats_source_uid_of,omitempty"`
	// Reliance says whether the mark relies on flat areas at the ends of the value range. Set
	// for PNG, TIFF and JPEG inputs; for DICOM the watermark hook sees the stored values (the
	// writer may change their representation), so its caller sets it
	// (pipeline.CheckedWatermarkHook).
	Reliance *watermark.Reliance `json:"reliance,omitempty"`
}

// EmbedFile marks the image at path and writes it to o.OutDir in the same format: PNG and
// TIFF as PNG and TIFF, JPEG as PNG (a JPEG re-encode would weaken the mark), each named
// after the input's stem; DICOM through the DICOM writer as a synthetic instance (Synthetic
// Data YES, new UIDs, the payload and key ids in the provenance record), named by its new
// SOP Instance UID.
func EmbedFile(ctx context.Context, path string, key watermark.Key, o EmbedOptions) (Embedded, error) {
	e := Embedded{Input: path, KeyID: key.ID()}
	if o.Outputs != nil {
		defer o.Outputs.Settle(o.Item) // whatever happens below, the items after this one go on
	}
	format, err := SniffFile(path)
	if err != nil {
		return e, fmt.Errorf("embed %s: %w", path, err)
	}
	e.Format = format
	if format == DICOM {
		if o.DICOM.Synthetic.Watermark == nil {
			return e, fmt.Errorf("embed %s: no DICOM watermark hook", path)
		}
		// Files Read cannot take (colour, for instance) get MarkFile's own error below.
		if f, err := Read(path); err == nil {
			if err := notMarked(path, f.Image, key, o.Replace); err != nil {
				return e, err
			}
		}
		mo := o.DICOM
		mo.OutDir, mo.Outputs = o.OutDir, o.Outputs
		res, err := dicomio.MarkFile(ctx, path, o.Item, mo)
		if err != nil {
			return e, err // MarkFile's error names the file
		}
		e.Output, e.Payload, e.RepeatsUIDOf = res.Path, res.Provenance.Generation.WatermarkPayloadID, res.RepeatsUIDOf
		return e, nil
	}
	outFormat, ext := format, "png"
	switch format {
	case JPEG:
		outFormat = PNG
	case TIFF:
		ext = "tif"
	}
	e.Output, err = outputName(o.Outputs, o.OutDir, path, ext, o.Item)
	if o.Outputs != nil {
		o.Outputs.Settle(o.Item) // named: the next items may claim while this one is marked
	}
	if err != nil {
		return e, fmt.Errorf("embed %s: %w", path, err)
	}
	f, err := Read(path)
	if err != nil {
		return e, fmt.Errorf("embed %s: %w", path, err)
	}
	if err := notMarked(path, f.Image, key, o.Replace); err != nil {
		return e, err
	}
	m, verified, err := watermark.EmbedVerified(f.Image, key, o.Payload, o.Mark)
	if err != nil {
		return e, fmt.Errorf("embed %s: %w", path, err)
	}
	e.Verified = verified
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return e, fmt.Errorf("embed %s: output folder: %w", path, err)
	}
	fl := o.Mark.WithDefaults()
	rec := &MarkRecord{PayloadID: o.Payload.String(), KeyID: key.ID(), PSNRFloor: fl.PSNR, SSIMFloor: fl.SSIM}
	if err := WriteRecorded(e.Output, m, outFormat, rec); err != nil {
		return e, fmt.Errorf("embed %s: %w", path, err)
	}
	e.Payload = o.Payload.String()
	if r, err := watermark.MarkReliance(f.Image, m, key); err == nil {
		e.Reliance = &r
	}
	return e, nil
}

// ErrMarked is wrapped by EmbedFile's error when the input already carries a mark of the key
// whose payload decodes: marking it again would replace the payload, the link from its pixels
// to the manifest row that describes it.
var ErrMarked = errors.New("already carries this key's watermark")

// notMarked returns an error wrapping ErrMarked when img carries a decodable payload of key,
// unless replace is set.
func notMarked(path string, img *watermark.Gray, key watermark.Key, replace bool) error {
	if replace {
		return nil
	}
	r, err := watermark.Detect(img, key)
	if err != nil || r.Payload == nil {
		return nil // nothing to keep (a detection error shows again when marking)
	}
	return fmt.Errorf("embed %s: %w (payload %s, %.1fσ): marking it again would replace the link to its manifest row; --replace-mark does so", path, ErrMarked, r.Payload, r.Score)
}

// outputName names the output of input in dir: <stem>.<ext>, or <stem>-<item>.<ext> when an
// earlier input of the batch took that name (two folders' scan.png, or scan.png beside
// scan.jpg). It refuses a name that is the input file itself.
func outputName(outs *dicomio.OutputSet, dir, input, ext string, item int) (string, error) {
	stem := strings.TrimSuffix(filepath.Base(input), filepath.Ext(input))
	out := filepath.Join(dir, stem+"."+ext)
	if outs != nil {
		if prev, ok := outs.Claim(item, out, input); !ok {
			alt := filepath.Join(dir, fmt.Sprintf("%s-%d.%s", stem, item, ext))
			if _, ok := outs.Claim(item, alt, input); !ok {
				return "", fmt.Errorf("outputs %s and %s are both taken (the first by %s)", out, alt, prev)
			}
			out = alt
		}
	}
	if err := dicomio.NotInput(out, input); err != nil {
		return "", err
	}
	return out, nil
}

// Write encodes g as PNG or TIFF at path, through a temporary file and a rename.
func Write(path string, g *watermark.Gray, format Format) error {
	return WriteRecorded(path, g, format, nil)
}

// WriteRecorded is Write that also records the mark (rec, when not nil) in the file.
func WriteRecorded(path string, g *watermark.Gray, format Format, rec *MarkRecord) error {
	var buf bytes.Buffer
	im := ToImage(g)
	var err error
	switch format {
	case PNG:
		err = png.Encode(&buf, im)
	case TIFF:
		err = tiff.Encode(&buf, im, &tiff.Options{Compression: tiff.Deflate})
	default:
		return fmt.Errorf("write %s: format %q is not writable here", path, format)
	}
	data := buf.Bytes()
	if err == nil && rec != nil {
		if format == PNG {
			data, err = withPNGRecord(data, *rec)
		} else {
			data, err = withTIFFRecord(data, *rec)
		}
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return dicomio.WriteFileAtomic(path, data)
}

// Verdict is what verify says about one file.
type Verdict struct {
	Path          string            `json:"path"`
	Format        Format            `json:"format,omitempty"`
	Result        *watermark.Result `json:"result,omitempty"`
	SyntheticData string            `json:"synthetic_data"`
	// TagsStripped is true when a mark is present but the file does not say Synthetic Data =
	// YES (always so for PNG, TIFF and JPEG, which cannot say it): a synthetic image that
	// has lost its labels.
	TagsStripped bool `json:"tags_stripped"`
	// RecordedPayload and RecordedKeyID are the payload and key ids that augment's provenance
	// record in a DICOM file, or its record in a marked PNG or TIFF (MarkRecord), says its
	// pixels were marked with ("" when it has none).
	RecordedPayload string `json:"recorded_payload_id,omitempty"`
	RecordedKeyID   string `json:"recorded_key_id,omitempty"`
	// Skipped is true for a DICOM file without an image (a structured report beside a study's
	// images): nothing to verify, and not an error.
	Skipped bool   `json:"skipped,omitempty"`
	Error   string `json:"error,omitempty"`
}

// VerifyFile reads path and detects the mark in its first frame with keys (one or more:
// watermark.DetectAny). A DICOM file whose provenance record, or a PNG or TIFF whose record, names
// one of the keys is read with that key alone: the choice depends on its tags, not its
// pixels, so no bound over the keys is needed.
func VerifyFile(path string, keys ...watermark.Key) Verdict {
	v := Verdict{Path: path}
	f, err := Read(path)
	if errors.Is(err, dicomio.ErrNotImage) {
		v.Format, v.Skipped = DICOM, true
		return v
	}
	if err != nil {
		v.Error = err.Error()
		return v
	}
	v.Format, v.SyntheticData = f.Format, f.SyntheticData
	if f.Format == DICOM {
		if p, err := dicomio.InspectProvenance(path); err == nil && p.Record != nil {
			v.RecordedPayload, v.RecordedKeyID = p.Record.Generation.WatermarkPayloadID, p.Record.Generation.WatermarkKeyID
		}
	}
	if f.Record != nil {
		v.RecordedPayload, v.RecordedKeyID = f.Record.PayloadID, f.Record.KeyID
	}
	for _, k := range keys {
		if v.RecordedKeyID != "" && k.ID() == v.RecordedKeyID {
			keys = []watermark.Key{k}
			break
		}
	}
	r, err := watermark.DetectAny(f.Image, keys)
	if err != nil {
		v.Error = fmt.Sprintf("verify %s: %v", path, err)
		return v
	}
	v.Result = &r
	v.TagsStripped = r.Present && f.SyntheticData != "YES"
	return v
}

// RecordMismatch says how the mark read disagrees with the file's provenance record: the
// record names another key, or names this key and a payload the pixels do not carry (the
// pixels changed after marking, or the mark was too weak to read from the start: augment
// generate records that as watermark_verified = false). "" when they agree or there is no
// record.
func (v Verdict) RecordMismatch() string {
	if v.Result == nil || v.RecordedPayload == "" {
		return ""
	}
	if v.RecordedKeyID != "" && v.RecordedKeyID != v.Result.KeyID {
		return fmt.Sprintf("its provenance record says it was marked with key %s (read with key %s): verify with that key", v.RecordedKeyID, v.Result.KeyID)
	}
	if v.Result.Payload == nil || v.Result.Payload.String() != v.RecordedPayload {
		return fmt.Sprintf("its provenance record names payload %s, which the pixels do not carry: changed after marking, or marked too weakly to read", v.RecordedPayload)
	}
	return ""
}

// AttackInput is an image ready for the robustness suite.
type AttackInput struct {
	Marked  *watermark.Gray
	Payload watermark.Payload
	// Embedded is true when the file carried no decodable mark and one was embedded.
	Embedded bool
}

// PrepareAttack reads path and returns its marked pixels and payload: the file's own mark
// when it decodes, else a fresh mark with payload p at the strength opt sets.
func PrepareAttack(path string, key watermark.Key, p watermark.Payload, opt watermark.Options) (AttackInput, error) {
	f, err := Read(path)
	if err != nil {
		return AttackInput{}, err
	}
	if r, err := watermark.Detect(f.Image, key); err == nil && r.Payload != nil {
		return AttackInput{Marked: f.Image, Payload: *r.Payload}, nil
	}
	m, err := watermark.EmbedWith(f.Image, key, p, opt)
	if err != nil {
		return AttackInput{}, fmt.Errorf("attack %s: %w", path, err)
	}
	return AttackInput{Marked: m, Payload: p, Embedded: true}, nil
}

// WriteAttacked writes each attacked image as <stem>.<attack>.png in dir, or as
// <stem>-<item>.<attack>.png when an earlier input of the batch (outs) had the same stem.
func WriteAttacked(dir, input string, item int, taken *dicomio.OutputSet, outs []watermark.AttackOutcome) error {
	stem := strings.TrimSuffix(filepath.Base(input), filepath.Ext(input))
	if taken != nil {
		if _, ok := taken.Claim(item, filepath.Join(dir, stem), input); !ok {
			stem = fmt.Sprintf("%s-%d", stem, item)
			taken.Claim(item, filepath.Join(dir, stem), input)
		}
		taken.Settle(item)
	}
	for _, o := range outs {
		if o.Image == nil {
			continue
		}
		name := strings.NewReplacer("%", "pct", "+", "plus", "/", "-").Replace(o.Attack)
		if err := Write(filepath.Join(dir, stem+"."+name+".png"), o.Image, PNG); err != nil {
			return err
		}
	}
	return nil
}

// WriteTable writes the summary as table.json and table.md in dir.
func WriteTable(dir string, rows []watermark.SuiteRow) error {
	js, err := json.MarshalIndent(rows, "", "  ")
	if err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	if err := dicomio.WriteFileAtomic(filepath.Join(dir, "table.json"), append(js, '\n')); err != nil {
		return err
	}
	return dicomio.WriteFileAtomic(filepath.Join(dir, "table.md"), []byte(watermark.FormatTable(rows)))
}
