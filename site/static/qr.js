// Renders a QR code onto a canvas with the vendored qrcode-generator 2.0.4 (MIT, npm;
// vendor/qrcode-generator/). Door passes are base45, the QR alphanumeric set, which makes
// the smallest code.
import qrcode from './vendor/qrcode-generator/qrcode.mjs';

const ALNUM = /^[0-9A-Z $%*+\-./:]*$/;

export function drawQR(canvas, text, { ecc = 'M', quiet = 4, px = 8 } = {}) {
  const qr = qrcode(0, ecc);
  qr.addData(text, ALNUM.test(text) ? 'Alphanumeric' : 'Byte');
  qr.make();
  const n = qr.getModuleCount();
  const size = (n + 2 * quiet) * px;
  canvas.width = size;
  canvas.height = size;
  const g = canvas.getContext('2d');
  g.fillStyle = '#fff';
  g.fillRect(0, 0, size, size);
  g.fillStyle = '#000';
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) {
      if (qr.isDark(r, c)) g.fillRect((c + quiet) * px, (r + quiet) * px, px, px);
    }
  }
  canvas.dataset.modules = String(n);
  canvas.dataset.payload = text;
  return n;
}
