package dicomio

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"
)

// ContributingEquipment is one item of Contributing Equipment Sequence (0018,A001).
type ContributingEquipment struct {
	Purpose          Code   `json:"purpose"`
	Manufacturer     string `json:"manufacturer,omitempty"`
	ModelName        string `json:"model_name,omitempty"`
	SoftwareVersions string `json:"software_versions,omitempty"`
	DateTime         string `json:"datetime,omitempty"`
	Description      string `json:"description,omitempty"`
}

// SourceReference is one item of Source Image Sequence (0008,2112).
type SourceReference struct {
	SOPClassUID    string `json:"sop_class_uid"`
	SOPInstanceUID string `json:"sop_instance_uid"`
	Purpose        Code   `json:"purpose"`
}

// Provenance is the synthetic-provenance view of a DICOM file: whether it says it is
// synthetic, by what and from what it was made, and the generation record when augment made it.
type Provenance struct {
	Path           string `json:"path"`
	SOPClassUID    string `json:"sop_class_uid"`
	SOPInstanceUID string `json:"sop_instance_uid"`
	// SyntheticData is (0008,001C): YES, NO or "" when absent. Marked is SyntheticData == YES.
	SyntheticData string `json:"synthetic_data"`
	Marked        bool   `json:"marked"`
	// ByAugment is true when the file holds augment's private provenance block.
	ByAugment bool `json:"by_augment"`

	ImageType              []string                `json:"image_type,omitempty"`
	DerivationDescription  string                  `json:"derivation_description,omitempty"`
	DerivationCodes        []Code                  `json:"derivation_codes,omitempty"`
	Equipment              []ContributingEquipment `json:"contributing_equipment,omitempty"`
	Sources                []SourceReference       `json:"sources,omitempty"`
	PatientID              string                  `json:"patient_id,omitempty"`
	PatientIdentityRemoved string                  `json:"patient_identity_removed,omitempty"`
	DeidentificationMethod string                  `json:"deidentification_method,omitempty"`
	DeidentificationCodes  []Code                  `json:"deidentification_codes,omitempty"`
	BurnedInAnnotation     string                  `json:"burned_in_annotation,omitempty"`

	// Record is augment's provenance record from the private block; nil when absent.
	Record *ProvenanceRecord `json:"record,omitempty"`
	// RecordError says why a private block that is present could not be read.
	RecordError string `json:"record_error,omitempty"`
}

// Synthesizer returns the contributing equipment item with purpose Synthesizing Equipment, or nil.
func (p *Provenance) Synthesizer() *ContributingEquipment {
	for i := range p.Equipment {
		if p.Equipment[i].Purpose.Value == CodeSynthesizingEquipment.Value && p.Equipment[i].Purpose.Scheme == "DCM" {
			return &p.Equipment[i]
		}
	}
	return nil
}

// InspectProvenance reads the synthetic-provenance attributes of the DICOM file at path. It
// reads any DICOM file, marked or not; pixel data is skipped.
func InspectProvenance(path string) (*Provenance, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", path, err)
	}
	ds, err := wrParse(f, st.Size(), dicom.SkipPixelData())
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", path, err)
	}
	p := provenanceFromDataset(&ds)
	p.Path = path
	return p, nil
}

func provenanceFromDataset(ds *dicom.Dataset) *Provenance {
	p := &Provenance{
		SOPClassUID:            wrFirst(ds, tag.SOPClassUID),
		SOPInstanceUID:         wrFirst(ds, tag.SOPInstanceUID),
		SyntheticData:          strings.ToUpper(wrFirst(ds, tagSyntheticData)),
		ImageType:              wrValues(ds, tag.ImageType),
		DerivationDescription:  wrFirst(ds, tag.DerivationDescription),
		PatientID:              wrFirst(ds, tag.PatientID),
		PatientIdentityRemoved: wrFirst(ds, tag.PatientIdentityRemoved),
		DeidentificationMethod: strings.Join(wrValues(ds, tag.DeidentificationMethod), `\`),
		BurnedInAnnotation:     wrFirst(ds, tag.BurnedInAnnotation),
	}
	p.Marked = p.SyntheticData == "YES"
	for _, it := range wrItems(ds, tag.DerivationCodeSequence) {
		p.DerivationCodes = append(p.DerivationCodes, wrItemCode(it))
	}
	for _, it := range wrItems(ds, tag.DeidentificationMethodCodeSequence) {
		p.DeidentificationCodes = append(p.DeidentificationCodes, wrItemCode(it))
	}
	for _, it := range wrItems(ds, tag.ContributingEquipmentSequence) {
		e := ContributingEquipment{
			Manufacturer:     wrFirst(it, tag.Manufacturer),
			ModelName:        wrFirst(it, tag.ManufacturerModelName),
			SoftwareVersions: strings.Join(wrValues(it, tag.SoftwareVersions), `\`),
			DateTime:         wrFirst(it, tag.ContributionDateTime),
			Description:      wrFirst(it, tag.ContributionDescription),
		}
		if codes := wrItems(it, tag.PurposeOfReferenceCodeSequence); len(codes) > 0 {
			e.Purpose = wrItemCode(codes[0])
		}
		p.Equipment = append(p.Equipment, e)
	}
	for _, it := range wrItems(ds, tag.SourceImageSequence) {
		r := SourceReference{SOPClassUID: wrFirst(it, tag.ReferencedSOPClassUID), SOPInstanceUID: wrFirst(it, tag.ReferencedSOPInstanceUID)}
		if codes := wrItems(it, tag.PurposeOfReferenceCodeSequence); len(codes) > 0 {
			r.Purpose = wrItemCode(codes[0])
		}
		p.Sources = append(p.Sources, r)
	}
	// The private block: find the creator, then its record element.
	for blk := uint16(0x10); blk <= 0xFF; blk++ {
		creator := strings.TrimSpace(wrFirst(ds, tag.Tag{Group: PrivateGroup, Element: blk}))
		if creator != PrivateCreator {
			continue
		}
		p.ByAugment = true
		raw := wrRawText(ds, tag.Tag{Group: PrivateGroup, Element: blk<<8 | 0x02})
		var rec ProvenanceRecord
		switch err := json.Unmarshal([]byte(raw), &rec); {
		case raw == "":
			p.RecordError = "private block has no record"
		case err != nil:
			p.RecordError = fmt.Sprintf("private record is not valid JSON: %v", err)
		default:
			p.Record = &rec
		}
		break
	}
	return p
}

// dsItems returns the items of sequence t as data sets.
func wrItems(ds *dicom.Dataset, t tag.Tag) []*dicom.Dataset {
	e, err := ds.FindElementByTag(t)
	if err != nil || e.Value == nil || e.Value.ValueType() != dicom.Sequences {
		return nil
	}
	items, ok := e.Value.GetValue().([]*dicom.SequenceItemValue)
	if !ok {
		return nil
	}
	var out []*dicom.Dataset
	for _, it := range items {
		if elems, ok := it.GetValue().([]*dicom.Element); ok {
			out = append(out, &dicom.Dataset{Elements: elems})
		}
	}
	return out
}

// dsRawText returns a text value as stored: the library splits every string value at
// backslashes, which UT and LT do not use as a delimiter, so the parts are joined back untrimmed.
func wrRawText(ds *dicom.Dataset, t tag.Tag) string {
	e, err := ds.FindElementByTag(t)
	if err != nil || e.Value == nil || e.Value.ValueType() != dicom.Strings {
		return ""
	}
	return strings.TrimSpace(strings.Join(dicom.MustGetStrings(e.Value), `\`))
}

func wrItemCode(ds *dicom.Dataset) Code {
	return Code{Value: wrFirst(ds, tag.CodeValue), Scheme: wrFirst(ds, tag.CodingSchemeDesignator), Meaning: wrFirst(ds, tag.CodeMeaning)}
}
