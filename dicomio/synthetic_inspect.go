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
	ds, err := parseGuarded(f, st.Size(), dicom.SkipPixelData())
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", path, err)
	}
	p := provenanceFromDataset(&ds)
	p.Path = path
	return p, nil
}

func provenanceFromDataset(ds *dicom.Dataset) *Provenance {
	p := &Provenance{
		SOPClassUID:            dsFirst(ds, tag.SOPClassUID),
		SOPInstanceUID:         dsFirst(ds, tag.SOPInstanceUID),
		SyntheticData:          strings.ToUpper(dsFirst(ds, tagSyntheticData)),
		ImageType:              dsValues(ds, tag.ImageType),
		DerivationDescription:  dsFirst(ds, tag.DerivationDescription),
		PatientID:              dsFirst(ds, tag.PatientID),
		PatientIdentityRemoved: dsFirst(ds, tag.PatientIdentityRemoved),
		DeidentificationMethod: strings.Join(dsValues(ds, tag.DeidentificationMethod), `\`),
		BurnedInAnnotation:     dsFirst(ds, tag.BurnedInAnnotation),
	}
	p.Marked = p.SyntheticData == "YES"
	for _, it := range dsItems(ds, tag.DerivationCodeSequence) {
		p.DerivationCodes = append(p.DerivationCodes, itemCode(it))
	}
	for _, it := range dsItems(ds, tag.DeidentificationMethodCodeSequence) {
		p.DeidentificationCodes = append(p.DeidentificationCodes, itemCode(it))
	}
	for _, it := range dsItems(ds, tag.ContributingEquipmentSequence) {
		e := ContributingEquipment{
			Manufacturer:     dsFirst(it, tag.Manufacturer),
			ModelName:        dsFirst(it, tag.ManufacturerModelName),
			SoftwareVersions: strings.Join(dsValues(it, tag.SoftwareVersions), `\`),
			DateTime:         dsFirst(it, tag.ContributionDateTime),
			Description:      dsFirst(it, tag.ContributionDescription),
		}
		if codes := dsItems(it, tag.PurposeOfReferenceCodeSequence); len(codes) > 0 {
			e.Purpose = itemCode(codes[0])
		}
		p.Equipment = append(p.Equipment, e)
	}
	for _, it := range dsItems(ds, tag.SourceImageSequence) {
		r := SourceReference{SOPClassUID: dsFirst(it, tag.ReferencedSOPClassUID), SOPInstanceUID: dsFirst(it, tag.ReferencedSOPInstanceUID)}
		if codes := dsItems(it, tag.PurposeOfReferenceCodeSequence); len(codes) > 0 {
			r.Purpose = itemCode(codes[0])
		}
		p.Sources = append(p.Sources, r)
	}
	// The private block: find the creator, then its record element.
	for blk := uint16(0x10); blk <= 0xFF; blk++ {
		creator := strings.TrimSpace(dsFirst(ds, tag.Tag{Group: PrivateGroup, Element: blk}))
		if creator != PrivateCreator {
			continue
		}
		p.ByAugment = true
		raw := dsRawText(ds, tag.Tag{Group: PrivateGroup, Element: blk<<8 | 0x02})
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
func dsItems(ds *dicom.Dataset, t tag.Tag) []*dicom.Dataset {
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
func dsRawText(ds *dicom.Dataset, t tag.Tag) string {
	e, err := ds.FindElementByTag(t)
	if err != nil || e.Value == nil || e.Value.ValueType() != dicom.Strings {
		return ""
	}
	return strings.TrimSpace(strings.Join(dicom.MustGetStrings(e.Value), `\`))
}

func itemCode(ds *dicom.Dataset) Code {
	return Code{Value: dsFirst(ds, tag.CodeValue), Scheme: dsFirst(ds, tag.CodingSchemeDesignator), Meaning: dsFirst(ds, tag.CodeMeaning)}
}
