package dicomio

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/suyashkumar/dicom/pkg/tag"
)

// Where an allow-listed source attribute may be copied to.
type copyScope int

const (
	scopeAll      copyScope = iota // every output IOD (General Series / General Image attributes)
	scopeCR                        // CR Image IOD
	scopeCT                        // CT Image IOD
	scopeMR                        // MR Image IOD
	scopeCTMR                      // CT and MR Image IODs
	scopeGeometry                  // CR, CT and MR when the output has the source's Rows and Columns
	scopeCTMRGeom                  // CT and MR (Image Plane module) when the output has the source's size
	scopeCRDX                      // CR and DX Image IODs
	scopeDX                        // DX Image IOD
)

// AllowedAttribute is one source attribute the synthetic writer may copy. The list is an
// explicit allow-list after PS3.15 Annex E (Basic Application Level Confidentiality Profile):
// only attributes that the profile keeps (absent from Table E.1-1) and that describe what the
// image shows or how the imitated acquisition was made. Nothing about the patient, the
// institution, the people, the dates or the equipment's identity is on it, no free-text
// descriptor, no sequence and no private attribute.
type AllowedAttribute struct {
	Tag  tag.Tag
	VR   string
	Name string
	// Why says why it is copied and where.
	Why   string
	scope copyScope
}

// SourceAllowList returns the attributes that may be copied from a source instance, in tag order.
func SourceAllowList() []AllowedAttribute {
	return []AllowedAttribute{
		{tag.Modality, "CS", "Modality", "General Series (Type 1): the synthetic image imitates this modality", scopeAll},
		{tag.BodyPartExamined, "CS", "Body Part Examined", "General Series: the anatomy the image shows; subgroup audits use it", scopeAll},
		{tag.SliceThickness, "DS", "Slice Thickness", "Image Plane (CT/MR, Type 2) when the output keeps the source's matrix", scopeCTMRGeom},
		{tag.KVP, "DS", "KVP", "CT Image (Type 2), CR Image: technique of the imitated acquisition", scopeCT},
		{tag.ScanningSequence, "CS", "Scanning Sequence", "MR Image (Type 1): the imitated pulse sequence", scopeMR},
		{tag.SequenceVariant, "CS", "Sequence Variant", "MR Image (Type 1)", scopeMR},
		{tag.ScanOptions, "CS", "Scan Options", "MR Image (Type 2)", scopeMR},
		{tag.MRAcquisitionType, "CS", "MR Acquisition Type", "MR Image (Type 2)", scopeMR},
		{tag.RepetitionTime, "DS", "Repetition Time", "MR Image (Type 2C)", scopeMR},
		{tag.EchoTime, "DS", "Echo Time", "MR Image (Type 2)", scopeMR},
		{tag.InversionTime, "DS", "Inversion Time", "MR Image (Type 2C)", scopeMR},
		{tag.NumberOfAverages, "DS", "Number of Averages", "MR Image (Type 3)", scopeMR},
		{tag.ImagingFrequency, "DS", "Imaging Frequency", "MR Image (Type 3)", scopeMR},
		{tag.ImagedNucleus, "SH", "Imaged Nucleus", "MR Image (Type 3)", scopeMR},
		{tag.MagneticFieldStrength, "DS", "Magnetic Field Strength", "MR Image (Type 3): subgroup audits use it", scopeMR},
		{tag.SpacingBetweenSlices, "DS", "Spacing Between Slices", "MR Image (Type 3) when the output keeps the source's matrix", scopeCTMRGeom},
		{tag.EchoTrainLength, "IS", "Echo Train Length", "MR Image (Type 2)", scopeMR},
		{tag.ImagerPixelSpacing, "DS", "Imager Pixel Spacing", "CR Image (Type 3), DX Detector (Type 1) when the output keeps the source's matrix", scopeGeometry},
		{tag.FlipAngle, "DS", "Flip Angle", "MR Image (Type 3)", scopeMR},
		{tag.ConvolutionKernel, "SH", "Convolution Kernel", "CT Image (Type 3): reconstruction the image imitates", scopeCT},
		{tag.PatientPosition, "CS", "Patient Position", "General Series (Type 2C for CT/MR)", scopeCTMR},
		{tag.ViewPosition, "CS", "View Position", "CR Series (Type 2), DX Positioning: subgroup audits use it", scopeCRDX},
		{tag.ImagePositionPatient, "DS", "Image Position (Patient)", "Image Plane (Type 1) when the output keeps the source's matrix", scopeCTMRGeom},
		{tag.ImageOrientationPatient, "DS", "Image Orientation (Patient)", "Image Plane (Type 1) when the output keeps the source's matrix", scopeCTMRGeom},
		{tag.Laterality, "CS", "Laterality", "General Series (Type 2C): which side of a paired body part", scopeAll},
		{tag.ImageLaterality, "CS", "Image Laterality", "DX Anatomy Imaged (Type 1): which side the image shows", scopeDX},
		{tag.PatientOrientation, "CS", "Patient Orientation", "General Image (Type 2C): row and column directions", scopeAll},
		{tag.SliceLocation, "DS", "Slice Location", "Image Plane (Type 3) when the output keeps the source's matrix", scopeCTMRGeom},
		{tag.PixelSpacing, "DS", "Pixel Spacing", "Image Plane (Type 1) / CR Image when the output keeps the source's matrix", scopeGeometry},
		{tag.PixelIntensityRelationship, "CS", "Pixel Intensity Relationship", "DX Image (Type 1): how stored values relate to X-ray intensity", scopeDX},
	}
}

// applies reports whether an allow-listed attribute of this scope is copied into an output of iod
// (sameSize: the output has the source's Rows and Columns).
func (a AllowedAttribute) applies(iod *iodSpec, sameSize bool) bool {
	switch a.scope {
	case scopeAll:
		return true
	case scopeCR:
		return iod.kind == iodCR
	case scopeCT:
		return iod.kind == iodCT
	case scopeMR:
		return iod.kind == iodMR
	case scopeCTMR:
		return iod.kind == iodCT || iod.kind == iodMR
	case scopeGeometry:
		return sameSize && (iod.kind == iodCR || iod.kind == iodDX || iod.kind == iodCT || iod.kind == iodMR)
	case scopeCRDX:
		return iod.kind == iodCR || iod.kind == iodDX
	case scopeDX:
		return iod.kind == iodDX
	case scopeCTMRGeom:
		return sameSize && (iod.kind == iodCT || iod.kind == iodMR)
	}
	return false
}

// DatePolicy says what happens to the source's dates in a synthetic instance.
type DatePolicy string

const (
	// DatesRemove writes Study Date and Content Date empty (Type 2) and no other date of the
	// source. It is the default.
	DatesRemove DatePolicy = "remove"
	// DatesShift moves the source's Study Date and Content Date back by a whole number of days
	// (1 to 3650) derived with HMAC-SHA-256 from a secret key and the run id, the same for every
	// instance of a run so intervals between studies survive. Times are removed.
	DatesShift DatePolicy = "shift"
)

// dateShiftDays is the number of days DatesShift moves dates back for run under key.
func synthDateShiftDays(key, run string) int {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte("augment-date-shift-v1:" + run))
	return 1 + int(binary.BigEndian.Uint64(m.Sum(nil)[:8])%3650)
}

// shiftDate moves a DA value (YYYYMMDD) back by days; an empty or malformed date gives "".
func synthShiftDate(da string, days int) string {
	t, err := time.Parse("20060102", strings.TrimSpace(da))
	if err != nil {
		return ""
	}
	return t.AddDate(0, 0, -days).Format("20060102")
}

// Codes from CID 7050 (De-identification Method) and the other coded concepts the writer uses.
var (
	CodeBasicProfile          = Code{"113100", "DCM", "Basic Application Confidentiality Profile"}
	CodeCleanDescriptors      = Code{"113105", "DCM", "Clean Descriptors Option"}
	CodeModifiedDates         = Code{"113107", "DCM", "Retain Longitudinal Temporal Information Modified Dates Option"}
	CodePatientCharacteristic = Code{"113108", "DCM", "Retain Patient Characteristics Option"}
	CodeSynthesizingEquipment = Code{"109100", "DCM", "Synthesizing Equipment"}
	CodeDeidentifyingEquip    = Code{"109104", "DCM", "De-identifying Equipment"}
	CodeSourceImage           = Code{"121322", "DCM", "Source image for image processing operation"}
)

// deidCodes returns the De-identification Method Code Sequence items for a synthetic instance.
func deidCodes(policy DatePolicy, demo Demographics) []Code {
	codes := []Code{CodeBasicProfile, CodeCleanDescriptors}
	if policy == DatesShift {
		codes = append(codes, CodeModifiedDates)
	}
	if demo.Sex != "" || demo.AgeKnown {
		codes = append(codes, CodePatientCharacteristic)
	}
	return codes
}

// deidMethod is the De-identification Method (0012,0063) text (LO, at most 64 characters).
func deidMethod(policy DatePolicy) string {
	if policy == DatesShift {
		return "augment synthetic: allow-list, new UIDs, dates shifted"
	}
	return "augment synthetic: allow-list, new UIDs, no dates"
}

// formatAge writes an age in years as a DICOM Age String (nnnD, nnnW, nnnM or nnnY).
func synthFormatAge(years float64) (string, error) {
	if years < 0 || years >= 1000 {
		return "", fmt.Errorf("age %.3g years out of range", years)
	}
	switch {
	case years >= 1:
		return fmt.Sprintf("%03dY", int(years)), nil
	case years*12 >= 1:
		return fmt.Sprintf("%03dM", int(years*12)), nil
	case years*52.1775 >= 1:
		return fmt.Sprintf("%03dW", int(years*52.1775)), nil
	default:
		return fmt.Sprintf("%03dD", int(years*365.25)), nil
	}
}

// syntheticPatientID is the Patient ID of a synthetic patient: prefix and 16 hex digits derived
// from the run and the patient key (not reversible to the key).
func syntheticPatientID(prefix, run, key string) string {
	h := sha256.Sum256([]byte(fmt.Sprintf("augment-patient-v1:%d:%s;%d:%s", len(run), run, len(key), key)))
	return fmt.Sprintf("%s%X", prefix, h[:8])
}
