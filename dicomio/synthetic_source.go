package dicomio

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"
)

// SourceInstance is what the synthetic writer may use of a real (source) instance: the UIDs that
// go into Source Image Sequence and nowhere else, the keys that group outputs, the image
// geometry, and the values of the allow-listed attributes (SourceAllowList). It holds nothing
// else of the source, so nothing else can leak into an output.
type SourceInstance struct {
	Path              string `json:"path,omitempty"`
	SOPClassUID       string `json:"sop_class_uid"`
	SOPInstanceUID    string `json:"sop_instance_uid"`
	StudyInstanceUID  string `json:"-"` // used only as a hashed key
	SeriesInstanceUID string `json:"-"` // used only as a hashed key

	Modality       string   `json:"modality"`
	ImageType      []string `json:"image_type,omitempty"`
	Rows, Columns  int      `json:"-"`
	Frames         int      `json:"-"`
	Samples        int      `json:"-"`
	BitsStored     int      `json:"-"`
	Photometric    string   `json:"-"`
	InstanceNumber int      `json:"-"`

	// StudyDate and ContentDate are kept only to be shifted under DatesShift.
	StudyDate   string `json:"-"`
	ContentDate string `json:"-"`

	// Display: the source's Modality LUT and first VOI window, when present.
	RescaleSlope, RescaleIntercept float64 `json:"-"`
	HasRescale                     bool    `json:"-"`
	WindowCenter, WindowWidth      float64 `json:"-"`
	HasWindow                      bool    `json:"-"`

	// Lossy compression history (0028,2110/2112/2114), carried over only when the output's
	// pixels are the source's pixels (augment mark).
	LossyCompression       string   `json:"-"`
	LossyCompressionRatio  []string `json:"-"`
	LossyCompressionMethod []string `json:"-"`
	BurnedInAnnotation     string   `json:"-"`

	// PresentationIntent is Presentation Intent Type (0008,0068) and PixelIntensitySign Pixel
	// Intensity Relationship Sign (0028,1041) (0 when absent), for the DX Image IOD.
	PresentationIntent string `json:"-"`
	PixelIntensitySign int    `json:"-"`
	// AnatomicRegion is the first code of Anatomic Region Sequence (0008,2218), for the DX
	// Image IOD (a coded anatomy; no other part of the sequence is kept).
	AnatomicRegion *Code `json:"-"`

	// Allowed holds the allow-listed attributes present in the source, by tag.
	Allowed map[tag.Tag][]string `json:"-"`
}

// ReadSourceInstance reads the attributes the synthetic writer may use from the DICOM file at
// path. Pixel data is not read. A panic in the DICOM library becomes an error naming the file.
func ReadSourceInstance(path string) (*SourceInstance, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read source %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read source %s: %w", path, err)
	}
	ds, err := wrParse(f, st.Size(), dicom.SkipPixelData())
	if err != nil {
		return nil, fmt.Errorf("read source %s: %w", path, err)
	}
	src, err := SourceFromDataset(&ds)
	if err != nil {
		return nil, fmt.Errorf("read source %s: %w", path, err)
	}
	src.Path = path
	return src, nil
}

// parseGuarded parses a DICOM stream with the library, turning a panic into an error.
func wrParse(f *os.File, size int64, opts ...dicom.ParseOption) (ds dicom.Dataset, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("DICOM parser panicked: %v", r)
		}
	}()
	opts = append(opts, dicom.AllowMissingMetaElementGroupLength(), dicom.AllowUnknownSpecificCharacterSet())
	return dicom.Parse(f, size, nil, opts...)
}

// SourceFromDataset extracts a SourceInstance from a data set parsed with
// github.com/suyashkumar/dicom. It fails when the data set has no SOP Class or SOP Instance UID,
// which Source Image Sequence needs.
func SourceFromDataset(ds *dicom.Dataset) (*SourceInstance, error) {
	s := &SourceInstance{
		SOPClassUID:        wrFirst(ds, tag.SOPClassUID),
		SOPInstanceUID:     wrFirst(ds, tag.SOPInstanceUID),
		StudyInstanceUID:   wrFirst(ds, tag.StudyInstanceUID),
		SeriesInstanceUID:  wrFirst(ds, tag.SeriesInstanceUID),
		Modality:           strings.ToUpper(wrFirst(ds, tag.Modality)),
		ImageType:          wrValues(ds, tag.ImageType),
		Rows:               wrInt(ds, tag.Rows),
		Columns:            wrInt(ds, tag.Columns),
		Frames:             max(1, wrInt(ds, tag.NumberOfFrames)),
		Samples:            max(1, wrInt(ds, tag.SamplesPerPixel)),
		BitsStored:         wrInt(ds, tag.BitsStored),
		Photometric:        strings.ToUpper(wrFirst(ds, tag.PhotometricInterpretation)),
		InstanceNumber:     wrInt(ds, tag.InstanceNumber),
		StudyDate:          wrFirst(ds, tag.StudyDate),
		ContentDate:        wrFirst(ds, tag.ContentDate),
		LossyCompression:   wrFirst(ds, tag.LossyImageCompression),
		BurnedInAnnotation: strings.ToUpper(wrFirst(ds, tag.BurnedInAnnotation)),
		PresentationIntent: strings.ToUpper(wrFirst(ds, tag.PresentationIntentType)),
		Allowed:            map[tag.Tag][]string{},
	}
	if s.SOPClassUID == "" || s.SOPInstanceUID == "" {
		return nil, fmt.Errorf("no SOP Class UID or SOP Instance UID")
	}
	for _, u := range []string{s.SOPClassUID, s.SOPInstanceUID} {
		if err := ValidateUID(u); err != nil {
			return nil, fmt.Errorf("source UID: %w", err)
		}
	}
	if sign := wrInt(ds, tag.PixelIntensityRelationshipSign); sign == 1 || sign == -1 || sign == 0xFFFF {
		s.PixelIntensitySign = max(-1, min(1, int(int16(uint16(sign)))))
	}
	if items := wrItems(ds, tag.AnatomicRegionSequence); len(items) > 0 {
		c := wrItemCode(items[0])
		c = Code{Value: synthCleanText(c.Value, 16, false), Scheme: synthCleanText(c.Scheme, 16, false), Meaning: synthCleanText(c.Meaning, 64, false)}
		if c.Value != "" && c.Scheme != "" {
			s.AnatomicRegion = &c
		}
	}
	s.LossyCompressionRatio = wrValues(ds, tag.LossyImageCompressionRatio)
	s.LossyCompressionMethod = wrValues(ds, tag.LossyImageCompressionMethod)
	if v, ok := wrFloat(ds, tag.RescaleSlope); ok {
		s.RescaleSlope, s.HasRescale = v, true
		s.RescaleIntercept, _ = wrFloat(ds, tag.RescaleIntercept)
	}
	if c, ok := wrFloat(ds, tag.WindowCenter); ok {
		if w, ok := wrFloat(ds, tag.WindowWidth); ok && w > 0 {
			s.WindowCenter, s.WindowWidth, s.HasWindow = c, w, true
		}
	}
	for _, a := range SourceAllowList() {
		e, err := ds.FindElementByTag(a.Tag)
		if err != nil || e.Value == nil || e.Value.ValueType() != dicom.Strings {
			continue
		}
		vals := dicom.MustGetStrings(e.Value)
		clean := make([]string, 0, len(vals))
		for _, v := range vals {
			clean = append(clean, synthCleanText(v, 64, false))
		}
		if len(clean) > 0 && strings.Join(clean, "") != "" {
			s.Allowed[a.Tag] = clean
		}
	}
	return s, nil
}

// dsValues returns the string values of t (numbers formatted), or nil.
func wrValues(ds *dicom.Dataset, t tag.Tag) []string {
	e, err := ds.FindElementByTag(t)
	if err != nil || e.Value == nil {
		return nil
	}
	switch e.Value.ValueType() {
	case dicom.Strings:
		out := []string{}
		for _, v := range dicom.MustGetStrings(e.Value) {
			out = append(out, strings.TrimRight(strings.TrimSpace(v), "\x00"))
		}
		return out
	case dicom.Ints:
		out := []string{}
		for _, v := range dicom.MustGetInts(e.Value) {
			out = append(out, strconv.Itoa(v))
		}
		return out
	case dicom.Floats:
		out := []string{}
		for _, v := range dicom.MustGetFloats(e.Value) {
			out = append(out, wrFormatDS(v))
		}
		return out
	}
	return nil
}

func wrFirst(ds *dicom.Dataset, t tag.Tag) string {
	if v := wrValues(ds, t); len(v) > 0 {
		return v[0]
	}
	return ""
}

func wrInt(ds *dicom.Dataset, t tag.Tag) int {
	n, err := strconv.Atoi(wrFirst(ds, t))
	if err != nil {
		return 0
	}
	return n
}

func wrFloat(ds *dicom.Dataset, t tag.Tag) (float64, bool) {
	f, err := strconv.ParseFloat(wrFirst(ds, t), 64)
	return f, err == nil
}
