package dicomio

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"
)

// GenerationMode is how a synthetic image was made.
type GenerationMode string

// The generation modes of the unCLIP stack, and re-marking an image made elsewhere.
const (
	ModeText              GenerationMode = "text"               // from a caption
	ModeVariation         GenerationMode = "variation"          // variation of a source image
	ModeInterpolation     GenerationMode = "interpolation"      // between two source images
	ModeTextEdit          GenerationMode = "text-edit"          // text diff applied to a source image
	ModeReportConditioned GenerationMode = "report-conditioned" // from a radiology report
	ModeRemark            GenerationMode = "remark"             // an existing image marked as synthetic (augment mark)
)

// GenerationRecord is what made a synthetic image. It is written, as JSON, into the private
// block of the output. It must not hold anything that identifies a source patient: Prompt and
// ReportText are written as given, so pass de-identified text.
type GenerationRecord struct {
	Bundle          string         `json:"bundle,omitempty"`
	BundleSHA256    string         `json:"bundle_sha256,omitempty"`
	Mode            GenerationMode `json:"mode"`
	Prompt          string         `json:"prompt,omitempty"`
	ReportText      string         `json:"report_text,omitempty"`
	Seed            int64          `json:"seed"`
	PriorGuidance   float64        `json:"prior_guidance,omitempty"`
	DecoderGuidance float64        `json:"decoder_guidance,omitempty"`
	PriorSteps      int            `json:"prior_steps,omitempty"`
	DecoderSteps    int            `json:"decoder_steps,omitempty"`
	UpsamplerSteps  []int          `json:"upsampler_steps,omitempty"`
	PriorKind       string         `json:"prior_kind,omitempty"` // "diffusion" or "ar"
	// Theta is the interpolation or text-edit angle, Eta the DDIM η of a variation.
	Theta float64 `json:"theta,omitempty"`
	Eta   float64 `json:"eta,omitempty"`
	// Watermark identifies the provenance watermark embedded in the pixels, if any.
	WatermarkPayloadID string `json:"watermark_payload_id,omitempty"`
	WatermarkKeyID     string `json:"watermark_key_id,omitempty"`
	// WatermarkPSNRFloor and WatermarkSSIMFloor are the invisibility floors the mark was held
	// at (PSNR in dB and SSIM, in the image's display range), which set its strength.
	WatermarkPSNRFloor float64 `json:"watermark_psnr_floor,omitempty"`
	WatermarkSSIMFloor float64 `json:"watermark_ssim_floor,omitempty"`
	// Tool names the program that made a re-marked image, when known.
	Tool string `json:"tool,omitempty"`
}

// ProvenanceRecord is the JSON document in the private block: the generation record plus what
// the writer did. Nothing in it identifies a source patient or a source instance.
type ProvenanceRecord struct {
	Format      string           `json:"format"`
	Software    string           `json:"software"`
	RunID       string           `json:"run_id"`
	Item        int              `json:"item"`
	Generation  GenerationRecord `json:"generation"`
	Sex         string           `json:"conditioned_sex,omitempty"`
	Age         string           `json:"conditioned_age,omitempty"`
	Sources     int              `json:"sources"`
	IOD         string           `json:"iod"`
	BitsStored  int              `json:"bits_stored"`
	PixelValues PixelValues      `json:"pixel_values"`
	Rescale     Rescale          `json:"rescale"`
	DatePolicy  DatePolicy       `json:"date_policy"`
}

// ProvenanceFormat is the Format of the ProvenanceRecord this version writes.
const ProvenanceFormat = "augment-provenance/1"

// Private block of the generation record: group 0x0099, creator (0099,0010) = PrivateCreator,
// elements (0099,1001) LO format and (0099,1002) UT JSON ProvenanceRecord.
const (
	PrivateCreator = "AUGMENT 1.0"
	PrivateGroup   = 0x0099
)

var (
	tagPrivateCreator = tag.Tag{Group: PrivateGroup, Element: 0x0010}
	tagPrivateFormat  = tag.Tag{Group: PrivateGroup, Element: 0x1001}
	tagPrivateRecord  = tag.Tag{Group: PrivateGroup, Element: 0x1002}
	// (0008,001C) Synthetic Data is recent (2024b); it is written by hand with VR CS.
	tagSyntheticData = tag.Tag{Group: 0x0008, Element: 0x001C}
)

// IODChoice selects the output IOD.
type IODChoice string

const (
	// IODAuto keeps the source's IOD where its modules can be filled honestly, else Secondary Capture.
	IODAuto IODChoice = "auto"
	// IODSecondaryCapture always writes a (multi-frame) Secondary Capture IOD.
	IODSecondaryCapture IODChoice = "secondary-capture"
)

// WatermarkFunc embeds a provenance watermark in the stored values of a synthetic image (in
// place, keeping every value within BitsStored) and returns what the generation record says
// of it. The writer calls it after quantisation, so the watermark is in exactly the values
// written. runID and item are the options' RunID and Item, from which the hook derives a
// payload id that points back at the run's record of the image.
type WatermarkFunc func(stored *Image, runID string, item int) (WatermarkRecord, error)

// WatermarkRecord is what a WatermarkFunc embedded, as the generation record keeps it.
type WatermarkRecord struct {
	PayloadID, KeyID string
	// PSNRFloor and SSIMFloor are the floors the mark was held at (0: not said).
	PSNRFloor, SSIMFloor float64
}

// SyntheticImage is one synthetic image to write.
type SyntheticImage struct {
	// Pixels is the generated frame (or frames): floats, or integers meaning stored values.
	// Photometric "" means MONOCHROME2 for 1 sample and RGB for 3.
	Pixels *Image
	// Values says what float pixels mean (ValuesUnit when empty).
	Values PixelValues
	// UnitRange gives the modality values of 0 and 1 for unit pixels (for a CT, the Hounsfield
	// range the model was trained on); nil keeps stored values as they are.
	UnitRange *[2]float64
	// Rescale maps integer pixels to modality values; nil means the identity.
	Rescale *Rescale
	// Window is the VOI window, in modality values, that displays the image the way it was
	// generated; nil means the full range of the stored values.
	Window *Window
	// Record is what made the image.
	Record GenerationRecord
	// Sources are the real instances the image was made from (none for text-only generation).
	Sources []*SourceInstance
	// Demographics are the patient attributes the image was conditioned on; only Sex and Age
	// are written.
	Demographics Demographics
}

// SyntheticOptions control how a synthetic instance is written.
type SyntheticOptions struct {
	// UIDRoot is the root of new UIDs; empty means UUIDRoot (2.25, UUID-derived UIDs).
	UIDRoot string
	// RunID and Item make UIDs deterministic: a rerun with the same values writes the same UIDs
	// and the same bytes.
	RunID string
	Item  int
	// StudyKey, SeriesKey, InstanceKey and PatientKey group outputs into studies, series and
	// synthetic patients within a run; each defaults to the item number (PatientKey to StudyKey).
	StudyKey, SeriesKey, InstanceKey, PatientKey string
	// PatientIDPrefix starts every synthetic Patient ID; empty means "SYN-".
	PatientIDPrefix string
	// BitDepth is 8, 12 (in 16) or 16; 0 means 8 for 8-bit or RGB frames and 16 otherwise.
	BitDepth int
	// DatePolicy is DatesRemove (default) or DatesShift, which needs DateShiftKey (a secret).
	DatePolicy   DatePolicy
	DateShiftKey string
	// IOD is IODAuto (default) or IODSecondaryCapture.
	IOD IODChoice
	// Created is when the image was made (Instance Creation Date/Time, Contribution DateTime);
	// zero leaves them out so that reruns stay byte-identical.
	Created time.Time
	// SoftwareVersion is augment's version, written in Software Versions and the file meta.
	SoftwareVersion string
	// InstanceNumber and SeriesNumber; 0 means Item+1 and 1.
	InstanceNumber, SeriesNumber int
	// Watermark, when set, embeds the provenance watermark in the stored values.
	Watermark WatermarkFunc
}

// SyntheticResult describes a written synthetic instance.
type SyntheticResult struct {
	Path              string  `json:"path,omitempty"`
	SOPClassUID       string  `json:"sop_class_uid"`
	IOD               string  `json:"iod"`
	IODReason         string  `json:"iod_reason"`
	SOPInstanceUID    string  `json:"sop_instance_uid"`
	StudyInstanceUID  string  `json:"study_instance_uid"`
	SeriesInstanceUID string  `json:"series_instance_uid"`
	PatientID         string  `json:"patient_id"`
	Modality          string  `json:"modality"`
	BitsStored        int     `json:"bits_stored"`
	Rescale           Rescale `json:"rescale"`
	// Stored holds the stored values written (after any watermark).
	Stored *Image `json:"-"`
	// Provenance is the record written to the private block.
	Provenance ProvenanceRecord `json:"-"`
	// RepeatsUIDOf names the earlier input of a re-marking batch whose source had the same SOP
	// Instance UID as this one's; this output got a new UID of its own (MarkOptions.Outputs).
	RepeatsUIDOf string `json:"repeats_source_uid_of,omitempty"`
}

// WriteSynthetic writes img as a synthetic DICOM instance to path (through a temporary file and
// a rename).
func WriteSynthetic(ctx context.Context, path string, img SyntheticImage, opts SyntheticOptions) (*SyntheticResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("write synthetic %s: %w", path, err)
	}
	res, data, err := EncodeSynthetic(img, opts)
	if err != nil {
		return nil, fmt.Errorf("write synthetic %s: %w", path, err)
	}
	if err := WriteFileAtomic(path, data); err != nil {
		return nil, err
	}
	res.Path = path
	return res, nil
}

// EncodeSynthetic encodes img as a synthetic DICOM Part 10 file and returns its bytes.
func EncodeSynthetic(img SyntheticImage, opts SyntheticOptions) (*SyntheticResult, []byte, error) {
	o, err := normalizeOptions(opts)
	if err != nil {
		return nil, nil, err
	}
	n, err := synthValidateFrame(img.Pixels)
	if err != nil {
		return nil, nil, fmt.Errorf("pixels: %w", err)
	}
	samples := max(img.Pixels.Samples, 1)
	frames := max(img.Pixels.Frames, 1)
	photometric := strings.ToUpper(img.Pixels.Photometric)
	switch {
	case samples == 3 && (photometric == "" || photometric == "RGB"):
		photometric = "RGB"
	case samples == 1 && photometric == "":
		photometric = "MONOCHROME2"
	case samples == 1 && (photometric == "MONOCHROME1" || photometric == "MONOCHROME2"):
	default:
		return nil, nil, fmt.Errorf("pixels: photometric interpretation %q with %d samples cannot be written", photometric, samples)
	}
	bits := o.BitDepth
	if bits == 0 {
		bits = 16
		if samples == 3 || len(img.Pixels.U8) > 0 || len(img.Pixels.I8) > 0 {
			bits = 8
		}
	}
	if samples == 3 && bits != 8 {
		return nil, nil, fmt.Errorf("RGB pixels are written with 8 bits, not %d", bits)
	}
	q, err := quantizeFrame(img.Pixels, n, bits, img.Values, img.UnitRange, img.Rescale)
	if err != nil {
		return nil, nil, fmt.Errorf("pixels: %w", err)
	}
	// The Modality LUT is written as Decimal Strings (16 characters): keep exactly that mapping.
	q.rescale = Rescale{Slope: wrDSRound(q.rescale.Slope), Intercept: wrDSRound(q.rescale.Intercept)}
	stored := q.img
	stored.Photometric = photometric
	if frames > 1 && photometric == "MONOCHROME1" {
		// Multi-frame grayscale Secondary Capture allows MONOCHROME2 only: invert.
		maxStored := uint16(1)<<bits - 1
		for i := range stored.U8 {
			stored.U8[i] = uint8(maxStored) - stored.U8[i]
		}
		for i := range stored.U16 {
			stored.U16[i] = maxStored - stored.U16[i]
		}
		stored.Photometric = "MONOCHROME2"
	}
	rec := img.Record
	if rec.Mode == "" {
		return nil, nil, fmt.Errorf("generation record has no mode")
	}
	if o.Watermark != nil {
		wm, err := o.Watermark(stored, o.RunID, o.Item)
		if err != nil {
			return nil, nil, fmt.Errorf("watermark: %w", err)
		}
		rec.WatermarkPayloadID, rec.WatermarkKeyID = wm.PayloadID, wm.KeyID
		rec.WatermarkPSNRFloor, rec.WatermarkSSIMFloor = wm.PSNRFloor, wm.SSIMFloor
	}
	pixelBytes, err := synthStoredBytes(stored)
	if err != nil {
		return nil, nil, fmt.Errorf("pixels: %w", err)
	}

	var src *SourceInstance
	if len(img.Sources) > 0 {
		src = img.Sources[0]
	}
	iod := chooseIOD(o.IOD, src, stored, q)
	sameSize := src != nil && src.Rows == stored.Rows && src.Columns == stored.Columns

	res := &SyntheticResult{
		SOPClassUID:       iod.sopClass,
		IOD:               iod.name,
		IODReason:         iod.reason,
		SOPInstanceUID:    DeriveUID(o.UIDRoot, o.RunID, UIDInstance, o.InstanceKey),
		StudyInstanceUID:  DeriveUID(o.UIDRoot, o.RunID, UIDStudy, o.StudyKey),
		SeriesInstanceUID: DeriveUID(o.UIDRoot, o.RunID, UIDSeries, o.SeriesKey),
		PatientID:         syntheticPatientID(o.PatientIDPrefix, o.RunID, o.PatientKey),
		BitsStored:        bits,
		Rescale:           q.rescale,
		Stored:            stored,
	}
	software := "augment " + o.SoftwareVersion
	remark := rec.Mode == ModeRemark

	d := &writeElems{}
	// SOP Common.
	d.str(tag.SOPClassUID, "UI", res.SOPClassUID)
	d.str(tag.SOPInstanceUID, "UI", res.SOPInstanceUID)
	d.str(tagSyntheticData, "CS", "YES")
	if !o.Created.IsZero() {
		d.str(tag.InstanceCreationDate, "DA", o.Created.UTC().Format("20060102"))
		d.str(tag.InstanceCreationTime, "TM", o.Created.UTC().Format("150405"))
	}
	// Image Type: DERIVED\SECONDARY plus the third value the IOD needs.
	imageType := []string{"DERIVED", "SECONDARY"}
	if iod.kind == iodCT || iod.kind == iodMR {
		third := "OTHER"
		if iod.kind == iodCT {
			third = "AXIAL"
		}
		if len(src.ImageType) >= 3 && src.ImageType[2] != "" {
			third = synthCleanText(src.ImageType[2], 16, false)
		}
		imageType = append(imageType, third)
	}
	d.str(tag.ImageType, "CS", imageType...)

	// Patient: a synthetic patient with only the conditioned attributes.
	d.str(tag.PatientName, "PN", "SYNTHETIC^"+res.PatientID)
	d.str(tag.PatientID, "LO", res.PatientID)
	d.str(tag.PatientBirthDate, "DA")
	sex := strings.ToUpper(strings.TrimSpace(img.Demographics.Sex))
	switch sex {
	case "M", "F", "O", "":
	default:
		return nil, nil, fmt.Errorf("demographics: sex %q is not M, F or O", img.Demographics.Sex)
	}
	d.str(tag.PatientSex, "CS", synthNonEmpty(sex)...)
	age := ""
	if img.Demographics.AgeKnown {
		if age, err = synthFormatAge(img.Demographics.AgeYears); err != nil {
			return nil, nil, fmt.Errorf("demographics: %w", err)
		}
		d.str(tag.PatientAge, "AS", age)
	}
	d.str(tag.PatientIdentityRemoved, "CS", "YES")
	d.str(tag.DeidentificationMethod, "LO", deidMethod(o.DatePolicy))
	var deidItems []*writeElems
	for _, c := range deidCodes(o.DatePolicy, img.Demographics) {
		deidItems = append(deidItems, wrCodeItem(c))
	}
	d.seq(tag.DeidentificationMethodCodeSequence, deidItems...)

	// General Study.
	studyDate, contentDate := "", ""
	if o.DatePolicy == DatesShift && src != nil {
		days := synthDateShiftDays(o.DateShiftKey, o.RunID)
		studyDate = synthShiftDate(src.StudyDate, days)
		contentDate = synthShiftDate(src.ContentDate, days)
		if contentDate == "" {
			contentDate = studyDate
		}
	}
	d.str(tag.StudyInstanceUID, "UI", res.StudyInstanceUID)
	d.str(tag.StudyDate, "DA", synthNonEmpty(studyDate)...)
	d.str(tag.StudyTime, "TM")
	d.str(tag.ReferringPhysicianName, "PN")
	d.str(tag.StudyID, "SH")
	d.str(tag.AccessionNumber, "SH")

	// General Series.
	modality := "OT"
	if src != nil && src.Modality != "" {
		modality = synthCleanText(src.Modality, 16, false)
	}
	d.str(tag.Modality, "CS", modality)
	res.Modality = modality
	d.str(tag.SeriesInstanceUID, "UI", res.SeriesInstanceUID)
	d.str(tag.SeriesNumber, "IS", strconv.Itoa(o.SeriesNumber))
	if src == nil || (src.Allowed[tag.Laterality] == nil && src.Allowed[tag.BodyPartExamined] == nil) {
		// Type 2C, required for a paired body part: unknown when the body part is unknown,
		// absent when the source names the body part without a laterality.
		d.str(tag.Laterality, "CS")
	}

	// General Equipment: the equipment that made this image is augment.
	model := rec.Bundle
	if model == "" {
		model = "augment " + string(rec.Mode)
	}
	if remark {
		model = "augment mark"
	}
	d.str(tag.Manufacturer, "LO", "augment")
	d.str(tag.ManufacturerModelName, "LO", synthCleanText(model, 64, false))
	d.str(tag.SoftwareVersions, "LO", synthCleanText(software, 64, false))

	// General Image.
	d.str(tag.InstanceNumber, "IS", strconv.Itoa(o.InstanceNumber))
	d.str(tag.ContentDate, "DA", synthNonEmpty(contentDate)...)
	d.str(tag.ContentTime, "TM")
	if !d.has(tag.PatientOrientation) && (iod.kind == iodCR || iod.kind == iodSC || iod.isMultiFrameSC()) {
		if src == nil || src.Allowed[tag.PatientOrientation] == nil {
			d.str(tag.PatientOrientation, "CS")
		}
	}
	d.str(tag.DerivationDescription, "ST", synthCleanText(derivationText(rec, len(img.Sources)), 1024, true))
	d.seq(tag.DerivationCodeSequence, wrCodeItem(derivationCode(rec.Mode)))
	var srcItems []*writeElems
	for _, s := range img.Sources {
		it := &writeElems{}
		it.str(tag.ReferencedSOPClassUID, "UI", s.SOPClassUID)
		it.str(tag.ReferencedSOPInstanceUID, "UI", s.SOPInstanceUID)
		it.seq(tag.PurposeOfReferenceCodeSequence, wrCodeItem(CodeSourceImage))
		srcItems = append(srcItems, it)
	}
	if len(srcItems) > 0 {
		d.seq(tag.SourceImageSequence, srcItems...)
	}
	burned := "NO"
	if remark && src != nil && src.BurnedInAnnotation == "YES" {
		burned = "YES"
	}
	d.str(tag.BurnedInAnnotation, "CS", burned)
	lossy := "00"
	if remark && src != nil && src.LossyCompression == "01" {
		lossy = "01"
		if len(src.LossyCompressionRatio) > 0 {
			d.str(tag.LossyImageCompressionRatio, "DS", src.LossyCompressionRatio...)
		}
		if len(src.LossyCompressionMethod) > 0 {
			d.str(tag.LossyImageCompressionMethod, "CS", src.LossyCompressionMethod...)
		}
	}
	d.str(tag.LossyImageCompression, "CS", lossy)

	// Contributing Equipment: augment as Synthesizing Equipment (and De-identifying Equipment
	// when the image comes from a real one).
	synth := &writeElems{}
	if remark {
		// The image was synthesised by another program: name it when known.
		tool := synthCleanText(rec.Tool, 64, false)
		if tool == "" {
			tool = "unknown"
		}
		synth.str(tag.Manufacturer, "LO", tool)
		synth.str(tag.ManufacturerModelName, "LO", tool)
	} else {
		synth.str(tag.Manufacturer, "LO", "augment")
		synth.str(tag.ManufacturerModelName, "LO", synthCleanText(model, 64, false))
		synth.str(tag.SoftwareVersions, "LO", synthCleanText(software, 64, false))
	}
	if !o.Created.IsZero() {
		synth.str(tag.ContributionDateTime, "DT", o.Created.UTC().Format("20060102150405")+"+0000")
	}
	synth.str(tag.ContributionDescription, "ST", synthCleanText(contributionText(rec), 1024, true))
	synth.seq(tag.PurposeOfReferenceCodeSequence, wrCodeItem(CodeSynthesizingEquipment))
	contrib := []*writeElems{synth}
	if src != nil {
		deid := &writeElems{}
		deid.str(tag.Manufacturer, "LO", "augment")
		deid.str(tag.SoftwareVersions, "LO", synthCleanText(software, 64, false))
		if !o.Created.IsZero() {
			deid.str(tag.ContributionDateTime, "DT", o.Created.UTC().Format("20060102150405")+"+0000")
		}
		deid.str(tag.ContributionDescription, "ST", "New patient, study, series and instance UIDs; attributes copied from the source by an explicit allow-list")
		deid.seq(tag.PurposeOfReferenceCodeSequence, wrCodeItem(CodeDeidentifyingEquip))
		contrib = append(contrib, deid)
	}
	d.seq(tag.ContributingEquipmentSequence, contrib...)

	// Allow-listed source attributes.
	if src != nil {
		for _, a := range SourceAllowList() {
			v, ok := src.Allowed[a.Tag]
			if !ok || !a.applies(iod, sameSize) || d.has(a.Tag) {
				continue
			}
			if a.Tag == tag.Modality {
				continue // written above
			}
			d.str(a.Tag, a.VR, v...)
		}
	}
	if err := addIODModules(d, iod, src, stored, o); err != nil {
		return nil, nil, err
	}

	// Image Pixel.
	d.ints(tag.SamplesPerPixel, "US", samples)
	d.str(tag.PhotometricInterpretation, "CS", stored.Photometric)
	if samples == 3 {
		d.ints(tag.PlanarConfiguration, "US", 0)
	}
	d.ints(tag.Rows, "US", stored.Rows)
	d.ints(tag.Columns, "US", stored.Columns)
	d.ints(tag.BitsAllocated, "US", stored.BitsAllocated)
	d.ints(tag.BitsStored, "US", bits)
	d.ints(tag.HighBit, "US", bits-1)
	d.ints(tag.PixelRepresentation, "US", 0)
	if iod.isMultiFrameSC() {
		d.str(tag.NumberOfFrames, "IS", strconv.Itoa(frames))
		d.ints(tag.FrameIncrementPointer, "AT", int(tag.PageNumberVector.Group), int(tag.PageNumberVector.Element))
		pages := make([]string, frames)
		for i := range pages {
			pages[i] = strconv.Itoa(i + 1)
		}
		d.str(tag.PageNumberVector, "IS", pages...)
	}

	// Modality LUT and VOI LUT: display the image the way it was generated.
	writeRescale := q.rescale
	if samples == 1 {
		maxStored := float64(int(1)<<bits - 1)
		win := Window{Center: writeRescale.Intercept + writeRescale.Slope*maxStored/2, Width: math.Abs(writeRescale.Slope) * (maxStored + 1)}
		if img.Window != nil && img.Window.Width > 0 {
			win = *img.Window
		}
		if iod.kind == iodMFByteSC {
			// Multi-frame Grayscale Byte SC requires the identity Modality LUT: express the
			// window in stored values; the modality mapping is kept in the private record.
			win = Window{Center: (win.Center - writeRescale.Intercept) / writeRescale.Slope, Width: win.Width / math.Abs(writeRescale.Slope)}
			writeRescale = Rescale{Slope: 1}
		}
		rescaleType := "US"
		if iod.kind == iodCT {
			rescaleType = "HU"
		}
		d.str(tag.RescaleIntercept, "DS", wrFormatDS(writeRescale.Intercept))
		d.str(tag.RescaleSlope, "DS", wrFormatDS(writeRescale.Slope))
		d.str(tag.RescaleType, "LO", rescaleType)
		d.str(tag.WindowCenter, "DS", wrFormatDS(win.Center))
		d.str(tag.WindowWidth, "DS", wrFormatDS(math.Max(win.Width, 1)))
		if iod.isMultiFrameSC() {
			d.str(tag.PresentationLUTShape, "CS", "IDENTITY")
		}
	}

	// Private block: the generation record.
	prov := ProvenanceRecord{
		Format: ProvenanceFormat, Software: software, RunID: o.RunID, Item: o.Item,
		Generation: rec, Sex: sex, Age: age, Sources: len(img.Sources), IOD: iod.name,
		BitsStored: bits, PixelValues: q.values, Rescale: q.rescale, DatePolicy: o.DatePolicy,
	}
	js, err := marshalASCIIJSON(prov)
	if err != nil {
		return nil, nil, fmt.Errorf("provenance record: %w", err)
	}
	d.str(tagPrivateCreator, "LO", PrivateCreator)
	d.str(tagPrivateFormat, "LO", ProvenanceFormat)
	d.str(tagPrivateRecord, "UT", js)
	res.Provenance = prov

	pixelVR := "OW"
	if stored.BitsAllocated == 8 {
		pixelVR = "OB"
	}
	d.add(tag.PixelData, pixelVR, pixelDataRaw(pixelBytes))
	if d.err != nil {
		return nil, nil, d.err
	}

	m := &writeElems{}
	m.add(tag.FileMetaInformationVersion, "OB", []byte{0, 1})
	m.str(tag.MediaStorageSOPClassUID, "UI", res.SOPClassUID)
	m.str(tag.MediaStorageSOPInstanceUID, "UI", res.SOPInstanceUID)
	m.str(tag.TransferSyntaxUID, "UI", ExplicitVRLittleEndian)
	m.str(tag.ImplementationClassUID, "UI", ImplementationClassUID(o.UIDRoot))
	m.str(tag.ImplementationVersionName, "SH", synthCleanText(ImplementationVersionPrefix+o.SoftwareVersion, 16, false))
	if m.err != nil {
		return nil, nil, m.err
	}
	data, err := encodePart10(m.list, d.list)
	if err != nil {
		return nil, nil, err
	}
	return res, data, nil
}

// normalizeOptions fills defaults and checks the options.
func normalizeOptions(o SyntheticOptions) (SyntheticOptions, error) {
	if err := ValidateUIDRoot(o.UIDRoot); err != nil {
		return o, err
	}
	if o.UIDRoot == "" {
		o.UIDRoot = UUIDRoot
	}
	item := strconv.Itoa(o.Item)
	if o.StudyKey == "" {
		o.StudyKey = item
	}
	if o.SeriesKey == "" {
		o.SeriesKey = o.StudyKey
	}
	if o.InstanceKey == "" {
		o.InstanceKey = item
	}
	if o.PatientKey == "" {
		o.PatientKey = o.StudyKey
	}
	if o.PatientIDPrefix == "" {
		o.PatientIDPrefix = "SYN-"
	}
	if p := synthCleanText(o.PatientIDPrefix, 0, false); p != o.PatientIDPrefix || len(p) > 40 {
		return o, fmt.Errorf("patient ID prefix %q: use at most 40 printable ASCII characters", o.PatientIDPrefix)
	}
	switch o.BitDepth {
	case 0, 8, 12, 16:
	default:
		return o, fmt.Errorf("bit depth %d: choose 8, 12 or 16", o.BitDepth)
	}
	switch o.DatePolicy {
	case "":
		o.DatePolicy = DatesRemove
	case DatesRemove:
	case DatesShift:
		if o.DateShiftKey == "" {
			return o, fmt.Errorf("date policy %q needs a secret date-shift key", DatesShift)
		}
	default:
		return o, fmt.Errorf("date policy %q: choose %q or %q", o.DatePolicy, DatesRemove, DatesShift)
	}
	switch o.IOD {
	case "":
		o.IOD = IODAuto
	case IODAuto, IODSecondaryCapture:
	default:
		return o, fmt.Errorf("output IOD %q: choose %q or %q", o.IOD, IODAuto, IODSecondaryCapture)
	}
	if o.SoftwareVersion == "" {
		o.SoftwareVersion = "dev"
	}
	if o.InstanceNumber == 0 {
		o.InstanceNumber = o.Item + 1
	}
	if o.SeriesNumber == 0 {
		o.SeriesNumber = 1
	}
	return o, nil
}

// pixelDataRaw wraps native pixel bytes as a Pixel Data value for the DICOM library.
func pixelDataRaw(b []byte) dicom.PixelDataInfo {
	return dicom.PixelDataInfo{IntentionallyUnprocessed: true, UnprocessedValueData: b}
}

// dsRound returns f as it reads back from its Decimal String.
func wrDSRound(f float64) float64 {
	v, err := strconv.ParseFloat(wrFormatDS(f), 64)
	if err != nil {
		return f
	}
	return v
}

func synthNonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

// marshalASCIIJSON encodes v as JSON with every non-ASCII rune escaped, so the value fits the
// default character repertoire and needs no Specific Character Set.
func marshalASCIIJSON(v any) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	var sb strings.Builder
	for _, r := range strings.TrimSpace(buf.String()) {
		switch {
		case r < 0x80:
			sb.WriteRune(r)
		case r > 0xFFFF:
			r -= 0x10000
			fmt.Fprintf(&sb, `\u%04x\u%04x`, 0xD800+(r>>10), 0xDC00+(r&0x3FF))
		default:
			fmt.Fprintf(&sb, `\u%04x`, r)
		}
	}
	return sb.String(), nil
}

// derivationText is the Derivation Description (0008,2111).
func derivationText(rec GenerationRecord, sources int) string {
	what := "Synthetic image"
	switch rec.Mode {
	case ModeRemark:
		what = "Existing image marked as synthetic"
		if rec.Tool != "" {
			what += " (made by " + rec.Tool + ")"
		}
	case ModeVariation:
		what = "Synthetic variation of a source image"
	case ModeInterpolation:
		what = "Synthetic interpolation between source images"
	case ModeTextEdit:
		what = "Synthetic text-guided edit of a source image"
	case ModeReportConditioned:
		what = "Synthetic image generated from a radiology report"
	case ModeText:
		what = "Synthetic image generated from a text prompt"
	}
	s := what
	if rec.Bundle != "" {
		s += " by model bundle " + rec.Bundle
	}
	s += fmt.Sprintf("; %d source image(s); not an acquisition of a real patient", sources)
	return s
}

// contributionText is the Contribution Description of the synthesizing equipment.
func contributionText(rec GenerationRecord) string {
	if rec.Mode == ModeRemark {
		if rec.WatermarkPayloadID != "" {
			return "Synthesized by another program; marked as synthetic by augment, its pixels changed only by augment's invisible provenance watermark"
		}
		return "Synthesized by another program; marked as synthetic by augment mark with its pixels unchanged"
	}
	s := "Generated by augment unCLIP (" + string(rec.Mode) + ")"
	if rec.PriorKind != "" {
		s += ", " + rec.PriorKind + " prior"
	}
	if rec.Seed != 0 {
		s += fmt.Sprintf(", seed %d", rec.Seed)
	}
	return s
}

// derivationCode is the Derivation Code Sequence item for a generation mode: a code of the
// private coding scheme 99AUGMENT (CID 7203 is extensible and has no code for generative
// synthesis).
func derivationCode(m GenerationMode) Code {
	switch m {
	case ModeText:
		return Code{"SYNTEXT", "99AUGMENT", "Synthetic image from text"}
	case ModeVariation:
		return Code{"SYNVARIATION", "99AUGMENT", "Synthetic image variation"}
	case ModeInterpolation:
		return Code{"SYNINTERP", "99AUGMENT", "Synthetic image interpolation"}
	case ModeTextEdit:
		return Code{"SYNTEXTEDIT", "99AUGMENT", "Synthetic image text edit"}
	case ModeReportConditioned:
		return Code{"SYNREPORT", "99AUGMENT", "Synthetic image from report"}
	case ModeRemark:
		return Code{"SYNMARK", "99AUGMENT", "Image marked as synthetic"}
	}
	return Code{"SYN", "99AUGMENT", "Synthetic image"}
}
