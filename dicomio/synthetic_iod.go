package dicomio

import (
	"fmt"
	"strings"

	"github.com/suyashkumar/dicom/pkg/tag"
)

// SOP Class UIDs the synthetic writer produces.
const (
	SOPClassCR                 = "1.2.840.10008.5.1.4.1.1.1"
	SOPClassDXForPresentation  = "1.2.840.10008.5.1.4.1.1.1.1"
	SOPClassCT                 = "1.2.840.10008.5.1.4.1.1.2"
	SOPClassMR                 = "1.2.840.10008.5.1.4.1.1.4"
	SOPClassSecondaryCapture   = "1.2.840.10008.5.1.4.1.1.7"
	SOPClassMultiFrameByteSC   = "1.2.840.10008.5.1.4.1.1.7.2"
	SOPClassMultiFrameWordSC   = "1.2.840.10008.5.1.4.1.1.7.3"
	SOPClassMultiFrameColourSC = "1.2.840.10008.5.1.4.1.1.7.4"
)

type iodKind int

const (
	iodSC iodKind = iota
	iodMFByteSC
	iodMFWordSC
	iodMFColourSC
	iodCR
	iodDX
	iodCT
	iodMR
)

// iodSpec is the chosen output IOD and why.
type iodSpec struct {
	kind     iodKind
	sopClass string
	name     string
	reason   string
}

func (s *iodSpec) isMultiFrameSC() bool {
	return s.kind == iodMFByteSC || s.kind == iodMFWordSC || s.kind == iodMFColourSC
}

// chooseIOD applies the output IOD rules (docs/synthetic-dicom.md):
//
//   - several frames: Multi-frame True Color SC (RGB), Multi-frame Grayscale Byte SC (8 bits) or
//     Multi-frame Grayscale Word SC (12 or 16 bits);
//   - RGB single frame: Secondary Capture Image;
//   - a single grey frame from a CR source: CR Image;
//   - from a DX for-presentation source: DX Image (for presentation) when the frame keeps the
//     source's matrix (Imager Pixel Spacing holds), the Modality LUT is the identity (the DX Image
//     module requires it), and the source gives Imager Pixel Spacing, Image Laterality, Patient
//     Orientation and Pixel Intensity Relationship with its sign, and its Anatomic Region
//     Sequence when it names a body part;
//   - from a single-frame CT source: CT Image when the frame keeps the source's matrix (so the
//     Image Plane module holds), is stored in 16 bits and its values are Hounsfield units (modality
//     or stored values, or unit values with a unit range);
//   - from a single-frame MR source: MR Image when the frame keeps the source's matrix, is stored
//     in 16 bits and the source names its Scanning Sequence and Sequence Variant;
//   - otherwise (no source, other modalities, or a rule above not met): Secondary Capture Image.
func chooseIOD(choice IODChoice, src *SourceInstance, stored *Image, q *quantized) *iodSpec {
	frames := max(stored.Frames, 1)
	switch {
	case frames > 1 && stored.Samples == 3:
		return &iodSpec{iodMFColourSC, SOPClassMultiFrameColourSC, "Multi-frame True Color Secondary Capture Image", "several RGB frames"}
	case frames > 1 && stored.BitsAllocated == 8:
		return &iodSpec{iodMFByteSC, SOPClassMultiFrameByteSC, "Multi-frame Grayscale Byte Secondary Capture Image", "several 8-bit grey frames"}
	case frames > 1:
		return &iodSpec{iodMFWordSC, SOPClassMultiFrameWordSC, "Multi-frame Grayscale Word Secondary Capture Image", "several 12/16-bit grey frames"}
	}
	sc := func(reason string) *iodSpec {
		return &iodSpec{iodSC, SOPClassSecondaryCapture, "Secondary Capture Image", reason}
	}
	if stored.Samples == 3 {
		return sc("RGB frame")
	}
	if choice == IODSecondaryCapture {
		return sc("Secondary Capture requested")
	}
	if src == nil {
		return sc("no source instance")
	}
	if src.Frames > 1 {
		return sc("source is multi-frame")
	}
	sameSize := src.Rows == stored.Rows && src.Columns == stored.Columns
	hasGeometry := src.Allowed[tag.PixelSpacing] != nil && src.Allowed[tag.ImageOrientationPatient] != nil && src.Allowed[tag.ImagePositionPatient] != nil
	switch {
	case src.SOPClassUID == SOPClassCR || (src.Modality == "CR" && !strings.HasPrefix(src.SOPClassUID, SOPClassSecondaryCapture)):
		return &iodSpec{iodCR, SOPClassCR, "CR Image", "CR source"}
	case src.SOPClassUID == SOPClassDXForPresentation:
		switch {
		case !sameSize:
			return sc("DX source, but the frame does not keep the source's matrix (Imager Pixel Spacing)")
		case q.rescale != (Rescale{Slope: 1}):
			return sc("DX Image needs the identity Modality LUT")
		case src.Allowed[tag.ImagerPixelSpacing] == nil || src.Allowed[tag.ImageLaterality] == nil ||
			len(src.Allowed[tag.PatientOrientation]) != 2 || src.Allowed[tag.PixelIntensityRelationship] == nil || src.PixelIntensitySign == 0:
			return sc("DX source without Imager Pixel Spacing, Image Laterality, Patient Orientation or Pixel Intensity Relationship (and Sign)")
		case src.Allowed[tag.BodyPartExamined] != nil && src.AnatomicRegion == nil:
			return sc("DX source names a body part without Anatomic Region Sequence")
		}
		return &iodSpec{iodDX, SOPClassDXForPresentation, "Digital X-Ray Image (For Presentation)", "DX for-presentation source with the same matrix"}
	case src.SOPClassUID == SOPClassCT:
		switch {
		case !sameSize:
			return sc("CT source, but the frame does not keep the source's matrix (Image Plane module)")
		case !hasGeometry:
			return sc("CT source without Pixel Spacing, Image Orientation and Image Position")
		case stored.BitsAllocated != 16:
			return sc("CT Image needs 16 bits allocated")
		case q.values == ValuesUnit && q.rescale == (Rescale{Slope: 1}):
			return sc("unit-range pixels without a unit range cannot carry Hounsfield units")
		}
		return &iodSpec{iodCT, SOPClassCT, "CT Image", "single-frame CT source with the same matrix"}
	case src.SOPClassUID == SOPClassMR:
		switch {
		case !sameSize:
			return sc("MR source, but the frame does not keep the source's matrix (Image Plane module)")
		case !hasGeometry:
			return sc("MR source without Pixel Spacing, Image Orientation and Image Position")
		case stored.BitsAllocated != 16:
			return sc("MR Image needs 16 bits allocated")
		case src.Allowed[tag.ScanningSequence] == nil || src.Allowed[tag.SequenceVariant] == nil:
			return sc("MR source without Scanning Sequence and Sequence Variant")
		}
		return &iodSpec{iodMR, SOPClassMR, "MR Image", "single-frame MR source with the same matrix"}
	}
	return sc(fmt.Sprintf("%s source (SOP Class %s) has no IOD the writer fills", synthOrDash(src.Modality), src.SOPClassUID))
}

func synthOrDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// addIODModules adds the attributes specific to the chosen IOD that are not copied from the
// source: SC Equipment, CR Series, Frame of Reference and the Type 2 attributes of the CT and MR
// Image modules the source did not give.
func addIODModules(d *writeElems, iod *iodSpec, src *SourceInstance, stored *Image, o SyntheticOptions) error {
	type2 := func(t tag.Tag, vr string) {
		if !d.has(t) {
			d.str(t, vr)
		}
	}
	switch iod.kind {
	case iodSC, iodMFByteSC, iodMFWordSC, iodMFColourSC:
		d.str(tag.ConversionType, "CS", "SYN")
	case iodCR:
		type2(tag.BodyPartExamined, "CS")
		type2(tag.ViewPosition, "CS")
	case iodDX:
		d.str(tag.PresentationIntentType, "CS", "FOR PRESENTATION")
		if src.AnatomicRegion != nil {
			d.seq(tag.AnatomicRegionSequence, wrCodeItem(*src.AnatomicRegion))
		} else {
			d.seq(tag.AnatomicRegionSequence)
		}
		d.seq(tag.AcquisitionContextSequence)
		d.str(tag.DetectorType, "CS")
		d.str(tag.PositionerType, "CS")
		d.ints(tag.PixelIntensityRelationshipSign, "SS", src.PixelIntensitySign)
		shape := "IDENTITY"
		if stored.Photometric == "MONOCHROME1" {
			shape = "INVERSE"
		}
		d.str(tag.PresentationLUTShape, "CS", shape)
	case iodCT, iodMR:
		d.str(tag.FrameOfReferenceUID, "UI", DeriveUID(o.UIDRoot, o.RunID, UIDFrameOfReference, o.SeriesKey))
		d.str(tag.PositionReferenceIndicator, "LO")
		type2(tag.SliceThickness, "DS")
		type2(tag.PatientPosition, "CS")
		if iod.kind == iodCT {
			type2(tag.KVP, "DS")
			d.str(tag.AcquisitionNumber, "IS")
		} else {
			type2(tag.ScanOptions, "CS")
			type2(tag.MRAcquisitionType, "CS")
			type2(tag.EchoTime, "DS")
			type2(tag.EchoTrainLength, "IS")
			type2(tag.RepetitionTime, "DS")
		}
	}
	return d.err
}
