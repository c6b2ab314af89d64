// C wrapper around DCMTK's DJDecompressIJG{8,12,16}Bit decoders.
#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmjpeg/djcparam.h"
#include "dcmtk/dcmjpeg/djdijg8.h"
#include "dcmtk/dcmjpeg/djdijg12.h"
#include "dcmtk/dcmjpeg/djdijg16.h"
#include "dcmtk/dcmjpeg/djutils.h"
#include "dcmtk/oflog/oflog.h"
#include <cstring>
#include <cstdio>
#include <new>
#include "ijg.h"

static void set_error(char *errbuf, int errlen, const char *msg) {
  if (errbuf && errlen > 0) {
    std::snprintf(errbuf, (size_t)errlen, "%s", msg);
  }
}

// quietLibrary stops DCMTK's JPEG module from printing IJG warnings (for example about unusual
// SOS parameters) to the console; errors come back as return values instead. Done once.
static void quietLibrary() {
  static const bool done = [] {
    DCM_dcmjpegLogger.setLogLevel(OFLogger::OFF_LOG_LEVEL);
    return true;
  }();
  (void)done;
}

extern "C" int augment_ijg_decode(const uint8_t *in, uint32_t inlen, uint8_t *out, uint32_t outlen,
                                  int precision, int color, int *rgb, char *errbuf, int errlen) {
  quietLibrary();
  E_DecompressionColorSpaceConversion conv = EDC_never;
  if (color == IJG_COLOR_GUESS) conv = EDC_guess;
  if (color == IJG_COLOR_ALWAYS) conv = EDC_always;
  DJCodecParameter param(ECC_lossyYCbCr, conv, EUC_never, EPC_colorByPixel);
  DJDecoder *dec = NULL;
  try {
    switch (precision) {
      case 8: dec = new DJDecompressIJG8Bit(param, color == IJG_COLOR_ALWAYS); break;
      case 12: dec = new DJDecompressIJG12Bit(param, color == IJG_COLOR_ALWAYS); break;
      case 16: dec = new DJDecompressIJG16Bit(param, color == IJG_COLOR_ALWAYS); break;
      default: set_error(errbuf, errlen, "unsupported JPEG sample precision"); return -1;
    }
  } catch (...) {
    set_error(errbuf, errlen, "out of memory");
    return -1;
  }
  int rc = 0;
  OFCondition cond = dec->init();
  if (cond.good()) {
    // The decoders take a non-const buffer but only read it.
    cond = dec->decode(const_cast<Uint8 *>(in), inlen, out, outlen, OFFalse);
  }
  if (cond == EJ_Suspension) {
    set_error(errbuf, errlen, "truncated JPEG data (decoder ran out of input)");
    rc = -1;
  } else if (cond.bad()) {
    set_error(errbuf, errlen, cond.text());
    rc = -1;
  } else if (rgb) {
    *rgb = dec->getDecompressedColorModel() == EPI_RGB ? 1 : 0;
  }
  delete dec;
  return rc;
}
