package dicomio

import "github.com/medaugment/augment/manifests"

// InventoryRow converts a scanned instance or error to its inventory manifest row.
func (rec Record) InventoryRow() manifests.InventoryRow {
	in := &rec.Instance
	row := manifests.InventoryRow{
		Path: in.Path, SOPInstanceUID: in.SOPInstanceUID, StudyInstanceUID: in.StudyInstanceUID,
		SeriesInstanceUID: in.SeriesInstanceUID, SOPClassUID: in.SOPClassUID, PatientID: in.PatientID,
		Modality: in.Modality, TransferSyntax: in.TransferSyntaxUID, BodyPart: in.BodyPartExamined,
		ViewPosition: in.ViewPosition, Manufacturer: in.Manufacturer, ManufacturerModel: in.ManufacturerModelName,
		Institution: in.InstitutionName, StudyDate: in.StudyDate,
		Rows: int32(in.Rows), Columns: int32(in.Columns), Frames: int32(in.Frames),
		SamplesPerPixel: int32(in.SamplesPerPixel), BitsAllocated: int32(in.BitsAllocated), BitsStored: int32(in.BitsStored),
		Signed: in.PixelRepresentation == 1, Photometric: in.Photometric,
		Sex: in.Demographics.Sex, EthnicGroup: in.Demographics.EthnicGroup, SyntheticData: in.SyntheticData,
		IsReport: in.ReportText != "", PixelSHA256: rec.PixelSHA256,
	}
	if in.Demographics.AgeKnown {
		age := in.Demographics.AgeYears
		row.AgeYears = &age
	}
	if rec.Err != nil {
		row.Error, row.ErrorReason = rec.Err.Error(), ErrorReason(rec.Err)
	}
	return row
}
