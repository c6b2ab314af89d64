// Package dicomio reads DICOM studies for augment: it walks folders, detects DICOM files by
// their content, indexes them as Study → Series → Instance, extracts the metadata that
// subgroup audits and manifests need (UIDs, acquisition attributes, demographics, the
// Synthetic Data flag, radiology reports), and decodes pixel data to stored values, modality
// values and display images.
//
// Parsing the data set is left to github.com/suyashkumar/dicom (pinned at v1.1.0). Pixel
// data is read as raw bytes (SkipProcessingPixelDataValue) and unpacked here, because the
// library converts native pixels to one int per sample, returns signed pixels as unsigned,
// and does not unpack big-endian or 1-bit data in the layout a model needs. Compressed frames
// are handed to the dicomio/codec package. Every call into the library is guarded at the
// file boundary: a panic in the library becomes an error naming the file, and pixel buffers
// are sized from Rows×Columns×Frames×Samples×BitsAllocated only after that size has been
// checked against the bytes present and a configurable limit. For speed, the library sees
// only the top-level attributes the reader uses, and of those only what is not plain: text in
// ASCII and integers are decoded by the reader's own walk over the element headers, exactly
// as the library decodes them (the tests compare both on every corpus file), because the
// library's per-element cost dominated scans of small files.
//
// The file writer (write*.go, synthetic*.go, deid*.go) lives in the same package.
package dicomio

// Code is a coded concept (code value, coding scheme designator, code meaning), as in
// DICOM's Code Sequence macro.
type Code struct {
	Value   string `json:"value"`
	Scheme  string `json:"scheme"`
	Meaning string `json:"meaning"`
}

// Demographics are the patient attributes that subgroup audits use. Empty strings and
// AgeKnown=false mean the file does not say; nothing is ever guessed.
type Demographics struct {
	Sex         string  `json:"sex"`          // M, F, O or ""
	AgeYears    float64 `json:"age_years"`    // valid only when AgeKnown
	AgeKnown    bool    `json:"age_known"`    // Patient's Age, else Birth Date and Study Date
	EthnicGroup string  `json:"ethnic_group"` // retired (0010,2160) string, or the code meanings joined
	EthnicCodes []Code  `json:"ethnic_codes,omitempty"`
}

// Image holds the decoded pixels of one instance as stored values, frames first, then rows,
// columns and samples (C order). Exactly one of U8, I8, U16, I16, U32, I32, F32, F64 is set,
// chosen as the smallest type that holds the stored values (BitsAllocated ≤ 8 → 8-bit,
// ≤ 16 → 16-bit, 32 → 32-bit; float pixel data as float). 1-bit data is unpacked to one
// uint8 (0 or 1) per pixel.
type Image struct {
	Rows, Columns, Frames, Samples int
	BitsAllocated, BitsStored      int
	Signed                         bool
	// Photometric is the photometric interpretation of the values held here; a codec may
	// change it (a YBR JPEG decodes to RGB).
	Photometric string

	U8  []uint8
	I8  []int8
	U16 []uint16
	I16 []int16
	U32 []uint32
	I32 []int32
	F32 []float32
	F64 []float64
}

// Instance is the metadata of one DICOM file (one SOP Instance). It holds no pixels.
type Instance struct {
	Path              string `json:"path"`
	SOPInstanceUID    string `json:"sop_instance_uid"`
	SOPClassUID       string `json:"sop_class_uid"`
	StudyInstanceUID  string `json:"study_instance_uid"`
	SeriesInstanceUID string `json:"series_instance_uid"`
	TransferSyntaxUID string `json:"transfer_syntax"`
	PatientID         string `json:"patient_id"`

	Modality              string `json:"modality"`
	BodyPartExamined      string `json:"body_part"`
	ViewPosition          string `json:"view_position"`
	Manufacturer          string `json:"manufacturer"`
	ManufacturerModelName string `json:"manufacturer_model"`
	InstitutionName       string `json:"institution"`
	StudyDate             string `json:"study_date"` // YYYYMMDD as stored, "" when absent

	Rows                int    `json:"rows"`
	Columns             int    `json:"columns"`
	Frames              int    `json:"frames"` // 1 when Number of Frames is absent and there are pixels
	SamplesPerPixel     int    `json:"samples_per_pixel"`
	BitsAllocated       int    `json:"bits_allocated"`
	BitsStored          int    `json:"bits_stored"`
	PixelRepresentation int    `json:"pixel_representation"` // 0 unsigned, 1 two's complement
	PlanarConfiguration int    `json:"planar_configuration"`
	Photometric         string `json:"photometric"`
	HasPixels           bool   `json:"has_pixels"`
	FloatPixels         bool   `json:"float_pixels,omitempty"` // Float or Double Float Pixel Data

	// Display attributes (Modality LUT and VOI LUT modules).
	RescaleSlope     float64   `json:"rescale_slope"`     // 1 when absent
	RescaleIntercept float64   `json:"rescale_intercept"` // 0 when absent
	PaddingValue     *int      `json:"padding_value,omitempty"`
	PaddingRangeEnd  *int      `json:"padding_range_limit,omitempty"`
	WindowCenter     []float64 `json:"window_center,omitempty"`
	WindowWidth      []float64 `json:"window_width,omitempty"`

	Demographics  Demographics `json:"demographics"`
	SyntheticData string       `json:"synthetic_data"` // (0008,001C): YES, NO or "" when absent

	// ReportText is the text of a Basic/Enhanced/Comprehensive SR instance: the TEXT content
	// items under its root CONTAINER, one per line. Empty for other instances.
	ReportText string `json:"report_text,omitempty"`
	// IsDirectory marks a DICOMDIR (Media Storage Directory), which is not an instance of a study.
	IsDirectory bool `json:"-"`
}

// IsReport reports whether the instance is a structured report with text.
func (in *Instance) IsReport() bool { return in.ReportText != "" }
