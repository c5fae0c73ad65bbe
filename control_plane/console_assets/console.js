// The operator console: a client of the platform's public HTTP API (SPEC §11).
// No framework and no build step: one shell per page (control_plane/console.py),
// this script renders the page named by <body data-page>. Everything it shows
// comes from the API with the logged-in user's bearer token; no business rule
// lives here. Text from the API is always set as text, never as HTML.
"use strict";

// ---------------------------------------------------------------- language

const EN = {
  "Kembalikan dana": "Refund", "Pengembalian dana": "Refunds", "Alasan pengembalian": "Reason for the refund",
  "Saya yakin: dana ini dikembalikan ke pelanggan": "I am sure: this money goes back to the customer",
  "Sisa yang dapat dikembalikan": "Left to refund", "Dikembalikan": "Refunded", "Diminta oleh": "Asked for by",
  "Diputuskan oleh": "Decided by", "Setujui": "Approve", "Tolak": "Reject", "Menunggu persetujuan": "Waiting for approval",
  "Belum ada pengembalian dana.": "No refunds yet.", "Transaksi asal": "Payment",
  "Pengembalian dana menunggu persetujuan orang kedua.": "The refund waits for a second person's approval.",
  "Partner": "Partners", "Partner baru": "New partner", "Kunci klien": "Client key", "Kunci publik RSA (PEM)": "RSA public key (PEM)",
  "URL notifikasi": "Notify URL", "ID merchant (dipisah koma)": "Merchant ids (comma-separated)",
  "Rahasia klien (hanya ditampilkan sekali)": "Client secret (shown only once)", "Pengiriman notifikasi": "Notification deliveries",
  "Kirim ulang": "Resend", "Percobaan": "Attempts", "Belum ada partner.": "No partners yet.", "Belum ada notifikasi.": "No notifications yet.",
  "Acquirer": "Acquirers", "Acquirer baru": "New acquirer", "Kode": "Code", "Protokol": "Protocol", "Ubah": "Edit",
  "Ubah acquirer": "Edit acquirer", "Rahasia tersimpan": "Secrets set", "Belum ada acquirer.": "No acquirers yet.",
  "Tanda tangan notifikasi": "Notification signature", "URL API acquirer": "Acquirer API URL", "ID kanal": "Channel id",
  "Rahasia (hanya ditulis, tidak pernah ditampilkan)": "Secrets (write-only, never shown)",
  "Kosong: tidak berubah": "Empty: unchanged", "ID di acquirer": "Ids at the acquirer",
  "ID merchant di acquirer": "Merchant id at the acquirer", "ID terminal di acquirer": "Terminal id at the acquirer",
  "Simpan ID merchant": "Save merchant id", "Simpan ID terminal": "Save terminal id", "ID terminal": "Terminal id",
  "Kunci privat platform (PEM)": "Platform private key (PEM)", "Tersimpan": "Saved",
  "Masuk": "Log in", "Kata sandi": "Password", "Masuk admin": "Admin login", "Masuk merchant": "Merchant login",
  "Keluar": "Log out", "Muat ulang": "Reload", "Berikutnya": "Next page", "Halaman pertama": "First page",
  "Filter": "Filter", "Hapus filter": "Clear filters", "Semua": "All", "Status": "Status", "Dibuat": "Created",
  "Jumlah": "Amount", "Merchant": "Merchant", "Terminal": "Terminal", "Perangkat": "Device", "Aksi": "Actions",
  "Tidak ada data untuk filter ini.": "Nothing matches these filters.",
  "Ubah atau hapus filter, atau tunggu data baru.": "Change or clear the filters, or wait for new data.",
  "Transaksi hari ini": "Today's payments", "Dibayar hari ini": "Paid today", "Nilai dibayar hari ini": "Paid volume today",
  "Perangkat online": "Devices online", "Outbox tertunda": "Outbox pending", "Outbox gagal/kedaluwarsa": "Outbox failed/expired",
  "Payout tertunda": "Pending payout", "Payout dibayar": "Paid payout", "Penyesuaian": "Adjustments",
  "Belum di-batch": "Unbatched payable", "Biaya platform": "Platform fees", "Batch terbaru": "Latest batches",
  "Diperbarui otomatis setiap": "Refreshes itself every", "detik": "seconds", "Terakhir diperbarui": "Last updated",
  "Online": "Online", "Offline": "Offline", "Kesehatan": "Health", "Model": "Model", "Serial": "Serial",
  "Terakhir terlihat": "Last seen", "Baterai": "Battery", "Sinyal": "Signal", "Drift konfigurasi": "Config drift",
  "Ulangi push konfigurasi": "Retry config push", "Daftarkan perangkat": "Register device",
  "Putar kredensial": "Rotate credential", "Kredensial baru": "New credential",
  "Rahasia ini hanya ditampilkan sekali. Salin sekarang; setelah dialog ditutup rahasia tidak dapat dipulihkan.":
    "This secret is shown once. Copy it now; once this dialog is closed the secret cannot be recovered.",
  "Salin": "Copy", "Tersalin": "Copied", "Tutup": "Close", "Saya sudah menyimpannya": "I have stored it",
  "Bayangan konfigurasi": "Config shadow", "Perintah": "Commands", "Notifikasi": "Notifications", "Jejak MQTT": "MQTT trace",
  "Diinginkan": "Desired", "Dilaporkan": "Reported", "Ikat ke terminal": "Bind to terminal", "Lepas": "Unbind",
  "Nonaktifkan": "Disable", "Aktifkan": "Enable", "Setujui": "Approve", "Tolak": "Reject", "Alasan": "Reason",
  "Merchant baru": "New merchant", "Nama": "Name", "Kota": "City", "Outlet": "Outlets", "Terminal baru": "New terminal",
  "Outlet baru": "New outlet", "Alamat": "Address", "QRIS statis": "Static QRIS", "Unduh PNG": "Download PNG",
  "Simpan": "Save", "Batal": "Cancel", "Buat": "Create", "Detail": "Detail", "Kejadian": "Events",
  "Ulangi notifikasi": "Retry notification", "Payload QR dinamis": "Dynamic QR payload",
  "Buat batch": "Create batches", "Tandai dibayar": "Mark paid", "Tandai gagal": "Mark failed", "Batalkan": "Cancel batch",
  "Proses ulang": "Reprocess", "Referensi payout": "Payout reference", "Catatan": "Note", "Entri": "Entries",
  "Tambah penyesuaian": "Add adjustment", "Jenis": "Type", "Riwayat": "History", "CSV standar": "Standard CSV",
  "CSV bank": "Bank CSV", "Batas waktu": "Cutoff", "Tanggal valuta": "Value date", "Tanpa merchant: semua merchant": "No merchant: all merchants",
  "Ekspor penyesuaian": "Adjustment export", "Mulai ekspor": "Start export", "Unduh": "Download",
  "Pengecualian callback": "Callback exceptions", "Cocok": "Matched", "Tidak cocok": "Mismatched",
  "Preset peristiwa login": "Login events preset", "Cari di halaman ini": "Search this page", "Aksi audit": "Action",
  "Entitas": "Entity", "Dari": "From", "Sampai": "To", "Login berhasil": "Logins succeeded", "Login gagal": "Logins failed",
  "Pelaku": "Actor", "Payload JSON": "JSON payload", "Waktu": "Time", "Proses": "Processes", "Pekerja ekspor": "Export worker",
  "Transaksi satu jam terakhir": "Transactions in the last hour", "Profil": "Profile", "Pengguna": "User",
  "Ringkasan settlement": "Settlement summary", "Sesi berakhir. Silakan masuk lagi.": "Your session ended. Please log in again.",
  "Halaman tidak ditemukan.": "Page not found.", "Lihat katalog halaman": "See the page catalogue",
  "Berhasil.": "Done.", "Memuat…": "Loading…", "Referensi": "Reference", "Jenis transaksi": "Kind",
  "ID merchant": "Merchant id", "ID terminal": "Terminal id", "Dibayar": "Paid at", "Kedaluwarsa": "Expires",
  "Permintaan gagal": "Request failed", "kode": "code", "id permintaan": "request id",
  "Belum ada transaksi. Transaksi muncul saat pelanggan membayar QRIS.":
    "No payments yet. They appear as customers pay a QRIS.",
  "Belum ada batch. Batch dibuat oleh tim keuangan dari pembayaran yang belum di-batch.":
    "No batches yet. Finance builds them from unbatched payments.",
  "Belum ada perangkat. Daftarkan perangkat dengan nomor seri dan modelnya.":
    "No devices yet. Register one with its serial number and model.",
  "Belum ada merchant. Buat merchant baru untuk memulai.": "No merchants yet. Create one to start.",
  "Model perangkat": "Device models", "Dialek": "Dialect", "Pengumuman bertanda tangan": "Signed announcements",
  "Ya: pengumuman palsu ditolak": "Yes: forged announcements are refused",
  "Tidak: bisa ditipu pengumuman palsu": "No: can be tricked by a forged announcement",
  "Tidak ada entri.": "No entries.", "Tidak ada perintah.": "No commands.", "Tidak ada notifikasi.": "No notifications.",
  "Tidak ada pesan MQTT.": "No MQTT messages.", "Tidak ada outlet. Tambahkan outlet di bawah.": "No outlets. Add one below.",
  "Tidak ada terminal.": "No terminals.", "Tidak ada pengecualian.": "No exceptions.", "Kirim perintah": "Send command",
  "Peran": "Role", "Tanpa QRIS statis": "No static QRIS", "Buka": "Open", "Pilih baris untuk melihat payload.": "Pick a row to see its payload.",
  "Batch": "Batches", "Di halaman ini": "On this page", "Terakhir login": "Last login", "Diputar": "Rotated", "Percobaan": "Attempts",
  "Di-ack": "Acked", "Transaksi": "Transactions", "Arah": "Direction", "Topik": "Topic", "Sumber": "Source", "Versi": "Version",
  "Terakhir": "Last", "Kode": "Code", "Biaya": "Fee", "Biaya (bps)": "Fee (bps)", "Kategori MDR": "MDR category", "Ubah biaya": "Change fee", "Biaya merchant": "Merchant fee",
  "Kontrak (bps)": "Contract (bps)", "jadwal MDR": "MDR schedule", "Diharapkan": "Expected", "Diterima": "Received",
  "Kode pos": "Postal code", "Kedaluwarsa/gagal": "Expired/failed", "Tertunda": "Pending",
  "Rekening pencairan": "Payout account", "Bank": "Bank", "Nomor rekening": "Account number", "Nama pemilik rekening": "Account name",
  "Atur rekening": "Set account", "Ubah rekening": "Change account", "disamarkan": "masked",
  "Nomor lengkap hanya untuk peran dengan izin payout_account:read.": "The full number is shown only to roles with payout_account:read.",
  "Belum ada rekening pencairan.": "No payout account yet.",
  "Atur rekening sebelum membuat batch: batch tanpa rekening tidak dapat dibayar.":
    "Set it before building a batch: a batch without an account cannot be paid.",
  "Hubungi tim keuangan platform untuk mengaturnya.": "Ask the platform's finance team to set it.",
  "Batch tertunda": "Pending batches",
  "Perubahan ditolak selama merchant punya batch tertunda: bayar atau batalkan batch itu dahulu.":
    "A change is refused while the merchant has a pending batch: pay or cancel that batch first.",
  "Batch ini dibuat tanpa rekening pencairan.": "This batch was built without a payout account.",
  "Tidak dapat ditandai dibayar: merchant belum punya rekening pencairan saat batch dibuat. Batalkan batch, atur rekening di halaman merchant, lalu buat batch lagi.":
    "Cannot be marked paid: the merchant had no payout account when the batch was built. Cancel the batch, set the account on the merchant's page, then build a new batch.",
  "Laporan acquirer": "Acquirer reports", "Laporan settlement acquirer (CSV)": "Acquirer settlement report (CSV)",
  "Unggah": "Upload", "Unggah laporan": "Upload a report", "Diimpor": "Imported", "Berkas": "File",
  "Tanggal settlement": "Settlement date", "Baris": "Line", "Jumlah baris": "Lines", "Selisih jumlah": "Amount differs",
  "Tidak ada di ledger": "Not in the ledger", "Tidak ada di laporan": "Missing from the report",
  "Belum diselesaikan": "Unresolved", "Diselesaikan": "Resolved", "Selesaikan": "Resolve",
  "Selesaikan pengecualian": "Resolve the exception", "Menurut laporan": "Report amount", "Menurut ledger": "Ledger amount",
  "Referensi provider": "Provider reference", "Pengecualian": "Exceptions", "Ekspor CSV": "Export CSV",
  "Total laporan": "Report total", "Biaya laporan": "Report fee", "Diimpor oleh": "Imported by",
  "Berkas ini sudah pernah diimpor: tidak ada yang berubah.": "This file was imported before: nothing changed.",
  "Belum ada laporan acquirer. Unggah CSV settlement harian dari acquirer.":
    "No acquirer reports yet. Upload the acquirer's daily settlement CSV.",
  "Tidak ada pengecualian: setiap baris laporan cocok dengan ledger.": "No exceptions: every line of the report matches the ledger.",
  "Kolom CSV: provider_reference, amount, settlement_date (wajib); fee, terminal_id, merchant_nmid (pilihan).":
    "CSV columns: provider_reference, amount, settlement_date (required); fee, terminal_id, merchant_nmid (optional).",
};
Object.assign(EN, {
  "Undang admin": "Invite admin", "Undang pengguna merchant": "Invite merchant user", "Ubah peran": "Change role", "Peran": "Role",
  "Nonaktifkan": "Disable", "Aktifkan": "Enable", "Atur ulang kata sandi": "Reset password", "Kata sandi sementara": "Temporary password",
  "Kata sandi": "Password", "Masuk di": "Log in at", "Email atau nama": "Email or name", "Login terakhir": "Last login",
  "Pengguna admin": "Admin users", "Pengguna merchant": "Merchant users", "Pengguna diundang.": "User invited.",
  "Peran diubah.": "Role changed.", "Pengguna dinonaktifkan.": "User disabled.", "Pengguna diaktifkan.": "User enabled.",
  "Kata sandi diatur ulang.": "Password reset.", "Nonaktifkan pengguna?": "Disable this user?", "Atur ulang kata sandi?": "Reset the password?",
  "Semua sesi pengguna ini berakhir dan ia tidak bisa masuk lagi sampai diaktifkan.": "Every session of this user ends and they cannot log in until enabled again.",
  "Kata sandi lama tidak berlaku lagi dan semua sesi pengguna ini berakhir.": "The old password stops working and every session of this user ends.",
  "Belum ada pengguna admin.": "No admin users yet.", "Belum ada pengguna merchant. Undang pemilik atau kasir merchant.": "No merchant users yet. Invite the merchant's owner or cashiers.",
  "Pengguna merchant ini": "This merchant's users",
  "Tanpa rekening pencairan (batch dibuat, tetapi belum bisa dibayar)": "No payout account (the batch is made but cannot be paid yet)",
  "Rekening": "Account", "tidak ada": "none",
  "Tidak ada payable yang belum di-batch: tidak ada batch yang akan dibuat.": "No unbatched payables: no batch would be made.",
});
const LANG_KEY = "qris.console.lang";
let lang = localStorage.getItem(LANG_KEY) === "en" ? "en" : "id";
const t = (text) => (lang === "en" && EN[text]) || text;

// ---------------------------------------------------------------- formatting

const rupiah = new Intl.NumberFormat("id-ID");
const money = (amount) => (amount === null || amount === undefined ? "—" : (amount < 0 ? "-Rp" : "Rp") + rupiah.format(Math.abs(amount)));
const TIME_ZONE = "Asia/Jakarta";
const localTime = new Intl.DateTimeFormat(lang === "en" ? "en-GB" : "id-ID", {
  timeZone: TIME_ZONE, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
});

function time(iso) {
  if (!iso) return text("—");
  const date = new Date(iso);
  return h("time", { datetime: iso, title: date.toISOString().replace(".000Z", "Z") + " (UTC)" }, localTime.format(date) + " WIB");
}

const STATUS_TONE = {
  active: "ok", paid: "ok", acked: "ok", healthy: "ok", completed: "ok", online: "ok", succeeded: "ok", matched: "ok",
  pending: "warn", pending_review: "warn", queued: "warn", sent: "warn", running: "warn", degraded: "warn", registered: "warn",
  failed: "bad", expired: "bad", rejected: "bad", cancelled: "bad", critical: "bad", disabled: "bad", offline: "bad",
  retired: "bad", mismatched: "bad", suspended: "bad", resolved: "ok", open: "warn",
  pending_approval: "warn", partially_refunded: "warn", refunded: "warn", amount_mismatch: "bad", missing_in_ledger: "bad", missing_in_report: "bad",
};
// Every status the console shows, in both languages (the one table: badges and status filters read it).
// The API's value stays on the badge as data-status, so tests and styles do not depend on the language.
const STATUS_LABEL = {
  active: ["aktif", "active"], inactive: ["nonaktif", "inactive"], disabled: ["dinonaktifkan", "disabled"],
  suspended: ["ditangguhkan", "suspended"], pending_review: ["menunggu tinjauan", "pending review"],
  rejected: ["ditolak", "rejected"], registered: ["terdaftar", "registered"], retired: ["dipensiunkan", "retired"],
  pending: ["menunggu", "pending"], paid: ["dibayar", "paid"], expired: ["kedaluwarsa", "expired"], failed: ["gagal", "failed"],
  cancelled: ["dibatalkan", "cancelled"], running: ["berjalan", "running"], completed: ["selesai", "completed"],
  queued: ["antre", "queued"], sent: ["terkirim", "sent"], delivered: ["tersampaikan", "delivered"], acked: ["dikonfirmasi", "acknowledged"],
  skipped_late: ["dilewati (terlambat)", "skipped (late)"], superseded: ["digantikan", "superseded"], dead: ["gagal permanen", "dead"],
  succeeded: ["berhasil", "succeeded"], applied: ["diterapkan", "applied"],
  partially_refunded: ["dikembalikan sebagian", "partially refunded"], refunded: ["dikembalikan", "refunded"],
  pending_approval: ["menunggu persetujuan", "pending approval"],
  online: ["daring", "online"], offline: ["luring", "offline"], healthy: ["sehat", "healthy"], degraded: ["menurun", "degraded"],
  critical: ["kritis", "critical"], ok: ["baik", "ok"], matched: ["cocok", "matched"], mismatched: ["tidak cocok", "mismatched"],
  open: ["terbuka", "open"], resolved: ["selesai ditangani", "resolved"], amount_mismatch: ["jumlah berbeda", "amount mismatch"],
  missing_in_ledger: ["tidak ada di ledger", "missing in ledger"], missing_in_report: ["tidak ada di laporan", "missing in report"],
};
const statusLabel = (status) => (STATUS_LABEL[status] ? STATUS_LABEL[status][lang === "en" ? 1 : 0] : String(status));
const badge = (status) => h("span", { class: "badge " + (STATUS_TONE[status] || ""), "data-status": status, title: String(status) }, statusLabel(status));
// A status filter's options: "all", then each status by its label.
const statusOptions = (...statuses) => [["", "Semua"], ...statuses.map((status) => [status, statusLabel(status)])];

// ---------------------------------------------------------------- DOM

function text(value) {
  return document.createTextNode(value === null || value === undefined ? "" : String(value));
}

function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : text(child));
  }
  return node;
}

const $ = (id) => document.getElementById(id);
const content = () => $("content");

function show(...nodes) {
  content().replaceChildren(...nodes.flat().filter((node) => node !== null && node !== undefined));
}

function flash(node) {
  $("flash").replaceChildren(...(node ? [node] : []));
}

function notice(message) {
  flash(h("div", { class: "notice" }, message));
}

// What an API error code means, for people: [Indonesian, English]. The API's own message (English,
// for developers) is shown under it; an unknown code shows that message alone.
const ERROR_TEXT = {
  validation_error: ["Isian tidak valid. Periksa kolom yang disebut.", "Invalid input. Check the field named."],
  not_found: ["Data tidak ditemukan.", "Not found."],
  unauthorized: ["Email atau kata sandi salah.", "Wrong email or password."],
  forbidden: ["Peran Anda tidak boleh melakukan ini.", "Your role may not do this."],
  conflict: ["Bentrok dengan data yang ada.", "Conflicts with existing data."],
  invalid_state: ["Tidak bisa pada status saat ini.", "Not possible in the current status."],
  rate_limited: ["Terlalu banyak permintaan. Coba lagi sebentar lagi.", "Too many requests. Try again shortly."],
  terminal_not_found: ["Terminal tidak ditemukan. Pilih terminal dari daftar atau periksa kodenya (mis. T000002).",
    "No such terminal. Pick one from the list or check its code (e.g. T000002)."],
  terminal_code_ambiguous: ["Kode terminal ini dipakai beberapa merchant: pilih merchant dan terminalnya.",
    "Several merchants use this terminal code: pick the merchant and its terminal."],
  terminal_occupied: ["Terminal ini sudah punya soundbox. Lepas perangkat itu dahulu.", "This terminal already has a soundbox. Unbind that device first."],
  device_already_bound: ["Perangkat sudah terikat ke terminal. Lepas dahulu.", "The device is already bound to a terminal. Unbind it first."],
  device_not_bound: ["Perangkat belum terikat ke terminal.", "The device is not bound to a terminal."],
  device_not_active: ["Perangkat belum aktif.", "The device is not active."],
  serial_number_taken: ["Nomor seri ini sudah terdaftar.", "This serial number is already registered."],
  merchant_not_active: ["Merchant belum aktif (belum disetujui).", "The merchant is not active (not approved yet)."],
  nmid_taken: ["NMID ini sudah dipakai merchant lain.", "Another merchant already has this NMID."],
  payout_account_change_blocked: ["Rekening tidak dapat diubah selama ada batch tertunda.", "The account cannot change while a batch is pending."],
  payout_account_missing: ["Merchant belum punya rekening pencairan.", "The merchant has no payout account."],
  refund_exceeds_remaining: ["Jumlah melebihi sisa yang dapat dikembalikan.", "The amount is above what is left to refund."],
  refund_amount_invalid: ["Jumlah pengembalian harus lebih dari nol.", "A refund amount must be above zero."],
  transaction_not_refundable: ["Hanya transaksi yang sudah dibayar dapat dikembalikan.", "Only a paid payment can be refunded."],
  refund_self_approval: ["Pengembalian dana harus disetujui orang lain, bukan yang memintanya.", "Someone other than who asked for it must approve the refund."],
  refund_state_invalid: ["Pengembalian dana ini tidak lagi menunggu keputusan.", "This refund no longer waits for a decision."],
  idempotency_in_progress: ["Permintaan yang sama masih diproses.", "The same request is still being processed."],
  user_exists: ["Pengguna dengan email ini sudah ada.", "A user with this email exists."],
  own_account: ["Anda tidak bisa menonaktifkan akun sendiri atau mengubah peran sendiri.", "You cannot disable your own account or change your own role."],
};

function errorBox(error) {
  const envelope = error && error.envelope;
  if (!envelope) return h("div", { class: "error" }, t("Permintaan gagal") + ": " + (error && error.message ? error.message : String(error)));
  const known = ERROR_TEXT[envelope.code];
  const details = envelope.details && typeof envelope.details === "object" ? Object.entries(envelope.details).filter(([name]) => name !== "pending_batch_ids") : [];
  return h("div", { class: "error", "data-code": envelope.code },
    h("strong", {}, known ? known[lang === "en" ? 1 : 0] : envelope.message), " ",
    h("span", {}, "(", t("kode"), " ", h("code", {}, envelope.code), ", ", t("id permintaan"), " ", h("code", {}, envelope.request_id || "—"), ")"),
    known ? h("div", { class: "muted" }, envelope.message) : null,
    details.length ? h("div", { class: "muted", "data-details": "" }, details.map(([name, value]) =>
      name + ": " + (typeof value === "object" ? JSON.stringify(value) : String(value))).join(" · ")) : null,
    pendingBatches(envelope.details));
}

// A payout account change refused while batches are pending names them: link each one.
function pendingBatches(details) {
  const ids = details && details.pending_batch_ids;
  if (!Array.isArray(ids) || !ids.length) return null;
  return h("div", { "data-pending-batches": "" }, t("Batch tertunda") + ": ",
    ids.flatMap((id, i) => [i ? ", " : "", link("admin-settlement-batch-detail", { id }, id)]));
}

function empty(message, next) {
  return h("div", { class: "empty" }, h("div", {}, t(message)), next ? h("div", {}, t(next)) : null);
}

function kv(pairs) {
  return h("dl", { class: "kv" }, pairs.flatMap(([label, value]) => [h("dt", {}, t(label)), h("dd", {}, value === null || value === undefined ? "—" : value)]));
}

function card(title, ...children) {
  return h("section", { class: "card" }, title ? h("h2", {}, t(title)) : null, ...children);
}

// An id on a detail page: shown whole and copyable (support tickets and the API need it).
function copyable(id) {
  if (!id) return null;
  const button = h("button", { type: "button", class: "link copy", title: t("Salin") }, t("Salin"));
  button.addEventListener("click", async () => {
    try { await navigator.clipboard.writeText(id); button.textContent = t("Tersalin"); } catch (_) { getSelection().selectAllChildren(code); }
  });
  const code = h("code", { "data-copy": id }, id);
  return h("span", { class: "id" }, code, " ", button);
}

// A terminal as people know it: the code printed on its QRIS and its name.
const terminalLabel = (x) => (x.terminal_code ? x.terminal_code + (x.terminal_name ? " · " + x.terminal_name : "") : x.terminal_id || "—");
const merchantLink = (x) => (x.merchant_id ? link("admin-merchant-detail", { id: x.merchant_id }, x.merchant_name || x.merchant_id) : "—");

// After a change the page reloads; the message says it worked, on the reloaded page.
const NOTICE_KEY = "qris.console.notice";
function reloadDone(message = "Berhasil.") {
  sessionStorage.setItem(NOTICE_KEY, t(message));
  location.reload();
}
function assignDone(url, message = "Berhasil.") {
  sessionStorage.setItem(NOTICE_KEY, t(message));
  location.assign(url);
}

// "Are you sure?" in the page's dialog (window.confirm cannot be styled or translated).
function confirmed(title, message) {
  const dialog = $("dialog");
  return new Promise((resolve) => {
    let answer = false;
    dialog.replaceChildren(h("h2", {}, t(title)), h("p", {}, t(message)), h("div", { class: "actions" },
      h("button", { type: "button", id: "confirm-yes", onclick: () => { answer = true; dialog.close(); } }, t("Ya, lanjutkan")),
      h("button", { type: "button", class: "secondary", onclick: () => dialog.close() }, t("Batal"))));
    dialog.addEventListener("close", () => resolve(answer), { once: true });
    dialog.showModal();
  });
}

function link(page, params, label) {
  return h("a", { href: pageUrl(page, params) }, label);
}

function pageUrl(page, params) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params || {})) if (value !== null && value !== undefined && value !== "") query.set(name, value);
  const qs = query.toString();
  return "/ui/" + page + (qs ? "?" + qs : "");
}

const query = () => new URLSearchParams(location.search);

// Date filters: the URL keeps the day (2026-11-30); the API gets that day's bounds in Jakarta,
// `to` inclusive of its day (the API's `to` is exclusive).
function apiParams(params) {
  const out = {};
  for (const [name, value] of Object.entries(params)) {
    if ((name === "from" || name === "to") && /^\d{4}-\d{2}-\d{2}$/.test(value)) {
      const day = new Date(value + "T00:00:00+07:00");
      if (name === "to") day.setUTCDate(day.getUTCDate() + 1);
      out[name] = day.toISOString();
    } else out[name] = value;
  }
  return out;
}

// ---------------------------------------------------------------- session and API

// The token lives in sessionStorage: gone when the tab closes. A device secret is never stored.
const SESSION_KEY = "qris.console.session";
const session = () => JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
const page = document.body.dataset.page;
const audience = page.startsWith("merchant-") ? "merchant" : "admin";

class ApiError extends Error {
  constructor(status, envelope) {
    super(envelope ? envelope.message : "HTTP " + status);
    this.status = status;
    this.envelope = envelope;
  }
}

function newKey() {
  return crypto.randomUUID ? crypto.randomUUID() : Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function api(method, path, body, options = {}) {
  const current = session();
  const headers = { Accept: "application/json" };
  if (current && !options.anonymous) headers.Authorization = "Bearer " + current.token;
  // A FormData body (a file upload) goes as multipart/form-data: the browser writes its boundary.
  const form = body instanceof FormData;
  if (body !== undefined && !form) headers["Content-Type"] = "application/json";
  // Every write carries an Idempotency-Key: a double click or a retried request happens once
  // on the routes that honour it (the others ignore the header).
  if (method !== "GET") headers["Idempotency-Key"] = options.key || newKey();
  const payload = body === undefined || form ? body : JSON.stringify(body);
  const response = await fetch(path, { method, headers, body: payload, credentials: "same-origin" });
  if (response.status === 401 && !options.anonymous) {
    sessionStorage.removeItem(SESSION_KEY);
    sessionStorage.setItem("qris.console.expired", "1");
    location.assign(pageUrl(audience + "-login", { next: location.pathname + location.search }));
    throw new ApiError(401, null);
  }
  if (!response.ok) {
    let envelope = null;
    try { envelope = (await response.json()).error; } catch (_) { /* not JSON */ }
    throw new ApiError(response.status, envelope);
  }
  if (options.blob) return response.blob();
  return response.json();
}

const get = (path, params) => api("GET", params ? path + "?" + new URLSearchParams(apiParams(clean(params))).toString() : path);
const post = (path, body, options) => api("POST", path, body === undefined ? {} : body, options);
const put = (path, body) => api("PUT", path, body);

function clean(params) {
  return Object.fromEntries(Object.entries(params).filter(([, v]) => v !== null && v !== undefined && v !== ""));
}

function may(permission) {
  const current = session();
  return Boolean(current && current.permissions && current.permissions.includes(permission));
}

// What each role may do: core/auth.py's table, handed over by the page shell. It only hides
// controls a role cannot use; the API refuses anything else anyway.
const ROLE_PERMISSIONS = JSON.parse(document.body.dataset.permissions || "{}");

async function download(path, filename) {
  const blob = await api("GET", path, undefined, { blob: true });
  const url = URL.createObjectURL(blob);
  const anchor = h("a", { href: url, download: filename });
  document.body.append(anchor);
  anchor.click();
  anchor.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// Runs an action from a button: disables it while it runs, shows the API's error in the page.
function action(label, run, attrs = {}) {
  const button = h("button", Object.assign({ type: "button" }, attrs), t(label));
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await run();
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 401)) flash(errorBox(error));
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

// ---------------------------------------------------------------- forms and dialogs

function field(name, label, attrs = {}) {
  if (attrs.options) {
    const { options, value, ...rest } = attrs;
    return h("label", {}, t(label), h("select", Object.assign({ name }, rest),
      options.map(([v, l]) => h("option", { value: v, selected: String(value ?? "") === v }, t(l)))));
  }
  return h("label", {}, t(label), h("input", Object.assign({ name }, attrs)));
}

function formValues(form) {
  return Object.fromEntries(Array.from(new FormData(form).entries()).map(([k, v]) => [k, String(v).trim()]));
}

// A form in the dialog; `submit` gets the values and closes the dialog when it resolves.
function formDialog(title, fields, submit) {
  const dialog = $("dialog");
  const errors = h("div", {});
  const form = h("form", { method: "dialog", class: "dialog-form" }, h("h2", {}, t(title)), errors, ...fields,
    h("div", { class: "actions" }, h("button", { type: "submit" }, t("Simpan")),
      h("button", { type: "button", class: "secondary", onclick: () => dialog.close() }, t("Batal"))));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const submitButton = form.querySelector("button[type=submit]");
    submitButton.disabled = true;
    try {
      await submit(formValues(form));
      // Unless the submit put something else in the dialog (a password to hand over once).
      if (dialog.contains(form)) dialog.close();
    } catch (error) {
      errors.replaceChildren(errorBox(error));
    } finally {
      submitButton.disabled = false;
    }
  });
  dialog.replaceChildren(form);
  dialog.showModal();
}

// ---------------------------------------------------------------- pickers: choose, don't paste an id

// A select filled from a list route, refilled as one types in the search box above it (the list's
// `q`). `onpick` hears the chosen item. The select carries `name`, so the form sends the id.
function searchableSelect({ name, label, path, params = {}, render, optional = false, required = !optional, onpick, searchLabel }) {
  const select = h("select", { name, "data-picker": name, required });
  const search = h("input", { type: "search", "data-picker-search": name, placeholder: t(searchLabel || "Cari…"), autocomplete: "off" });
  let items = [];
  let timer = null;
  const fill = async () => {
    const data = await get(path, clean(Object.assign({ limit: 50, q: search.value.trim() }, params)));
    items = data.items;
    select.replaceChildren(...(optional ? [h("option", { value: "" }, t(optional === true ? "Semua" : optional))] : [h("option", { value: "" }, "—")]),
      ...items.map((item) => h("option", { value: item.id }, render(item))));
    if (onpick) onpick(null);
  };
  search.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => fill().catch((error) => flash(errorBox(error))), 250); });
  select.addEventListener("change", () => { if (onpick) onpick(items.find((item) => item.id === select.value) || null); });
  const node = h("label", {}, t(label), search, select);
  node.ready = fill();
  return node;
}

// A merchant by name, code or NMID.
function merchantPicker({ optional = false, required = !optional, onpick } = {}) {
  return searchableSelect({ name: "merchant_id", label: "Merchant", path: "/admin/merchants", searchLabel: "Nama, kode atau NMID",
    render: (m) => `${m.name} · ${m.code}${m.city ? " · " + m.city : ""}`, optional: optional ? "Tanpa merchant: semua merchant" : false, required, onpick });
}

// Bind a soundbox: merchant → outlet → terminal, each from the API; or the code printed on the QRIS.
function bindDialog(base) {
  const outlet = h("select", { name: "outlet_id", "data-picker": "outlet_id", disabled: true });
  const terminal = h("select", { name: "terminal_id", "data-picker": "terminal_id", disabled: true });
  const option = (value, label, disabled = false) => h("option", { value, disabled }, label);
  let merchantId = null;
  const loadTerminals = async () => {
    terminal.disabled = true;
    if (!merchantId) return;
    const data = await get("/admin/terminals", clean({ merchant_id: merchantId, outlet_id: outlet.value, limit: 200 }));
    terminal.replaceChildren(option("", "—"), ...data.items.map((x) => option(x.id,
      `${x.terminal_code} · ${x.name}` + (x.bound_device ? " (" + t("sudah ada soundbox") + ": " + x.bound_device.serial_number + ")" : ""), Boolean(x.bound_device) || x.status !== "active")));
    terminal.disabled = false;
  };
  // Nothing is required by itself: a terminal picked, or the code typed.
  const merchant = merchantPicker({ required: false, onpick: async (m) => {
    merchantId = m ? m.id : null;
    outlet.disabled = true;
    outlet.replaceChildren();
    terminal.replaceChildren();
    if (!m) return;
    const data = await get("/admin/outlets", { merchant_id: m.id, limit: 200 });
    outlet.replaceChildren(option("", t("Semua")), ...data.items.map((o) => option(o.id, o.name)));
    outlet.disabled = false;
    await loadTerminals();
  } });
  outlet.addEventListener("change", () => loadTerminals().catch((error) => flash(errorBox(error))));
  formDialog("Ikat ke terminal", [merchant, h("label", {}, t("Outlet"), outlet), h("label", {}, t("Terminal"), terminal),
    field("terminal_code", "Atau kode terminal (di stiker QRIS)", { placeholder: "T000002", autocomplete: "off" })],
  async (v) => {
    const body = v.terminal_id ? { terminal_id: v.terminal_id } : { terminal_code: v.terminal_code.toUpperCase() };
    await post(base + "/bind", body);
    reloadDone("Perangkat terikat ke terminal.");
  });
}

// ---------------------------------------------------------------- lists

// A list on the server: filters and the cursor live in the URL, so a link can be shared.
// `live`: the rows refresh on their own (the filter form is left alone while one types).
// `keep`: URL parameters of the page itself (a detail page's id) that the filter form carries along.
async function listView({ path, columns, filters = [], keep = [], rowLink, emptyText, emptyNext, live = false, summary }) {
  const params = query();
  const kept = Object.fromEntries(keep.filter((name) => params.get(name)).map((name) => [name, params.get(name)]));
  const unfiltered = location.pathname + (Object.keys(kept).length ? "?" + new URLSearchParams(kept) : "");
  const request = {};
  for (const f of filters) if (params.get(f.name)) request[f.name] = params.get(f.name);
  if (params.get("cursor")) request.cursor = params.get("cursor");
  if (params.get("limit")) request.limit = params.get("limit");
  const filterForm = filters.length ? h("form", { class: "filters", method: "get" },
    Object.entries(kept).map(([name, value]) => h("input", { type: "hidden", name, value })),
    filters.map((f) => (f.hidden ? (params.get(f.name) ? h("input", { type: "hidden", name: f.name, value: params.get(f.name) }) : null)
      : field(f.name, f.label, Object.assign({ value: params.get(f.name) || "" }, f.attrs || {})))),
    h("button", { type: "submit" }, t("Filter")), h("a", { href: unfiltered }, t("Hapus filter"))) : null;
  if (filterForm) {
    filterForm.addEventListener("submit", (event) => {
      event.preventDefault();
      const values = clean(formValues(filterForm));
      location.assign(location.pathname + (Object.keys(values).length ? "?" + new URLSearchParams(values) : ""));
    });
  }
  const holder = h("div", {});
  const refresh = async () => {
    const data = await get(path, request);
    const filtered = filters.some((f) => params.get(f.name));
    const table = data.items.length ? h("table", { "data-list": path },
      h("thead", {}, h("tr", {}, columns.map(([label, , cls]) => h("th", { class: cls }, t(label))))),
      h("tbody", {}, data.items.map((item) => {
        const row = h("tr", { class: rowLink ? "clickable" : null, "data-id": item.id },
          columns.map(([label, render, cls]) => h("td", { class: cls, "data-label": t(label) }, render(item))));
        if (rowLink) row.addEventListener("click", (event) => { if (!event.target.closest("a,button")) location.assign(rowLink(item)); });
        return row;
      }))) : filtered ? empty("Tidak ada data untuk filter ini.", "Ubah atau hapus filter, atau tunggu data baru.") : empty(emptyText, emptyNext);
    const next = new URLSearchParams(params);
    next.set("cursor", data.next_cursor || "");
    const first = new URLSearchParams(params);
    first.delete("cursor");
    holder.replaceChildren(summary && data.items.length ? summary(data.items) : "", table, h("div", { class: "pager" },
      params.get("cursor") ? h("a", { href: "?" + first }, t("Halaman pertama")) : null,
      data.next_cursor ? h("a", { href: "?" + next, rel: "next" }, t("Berikutnya")) : null));
  };
  if (live) return [filterForm, poll(refresh), holder];
  await refresh();
  return [filterForm, holder];
}

// ---------------------------------------------------------------- polling

const POLL_MS = 5000;
const firstRenders = [];
function poll(render) {
  const stamp = h("div", { class: "muted", id: "refreshed" });
  const run = async () => {
    try {
      await render();
      stamp.replaceChildren(t("Diperbarui otomatis setiap"), " " + POLL_MS / 1000 + " ", t("detik"), " · ", t("Terakhir diperbarui"), " ", time(new Date().toISOString()));
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 401)) flash(errorBox(error));
    }
    setTimeout(run, POLL_MS);
  };
  firstRenders.push(run());
  return stamp;
}

// ---------------------------------------------------------------- layout

const NAV = {
  admin: [["admin-dashboard-overview", "Dasbor", "Dashboard"], ["admin-merchants", "Merchant", "Merchants"],
    ["admin-device-registry", "Perangkat", "Devices"], ["admin-transactions", "Transaksi", "Transactions"],
    ["admin-settlement-batches", "Settlement", "Settlement"], ["admin-refunds", "Pengembalian dana", "Refunds"],
    ["admin-reconciliation-management", "Rekonsiliasi", "Reconciliation"],
    ["admin-acquirer-reports", "Laporan acquirer", "Acquirer reports", "settlement:write"],
    ["admin-partners", "Partner", "Partners", "partner:manage"],
    ["admin-acquirers", "Acquirer", "Acquirers", "acquirer:manage"],
    ["admin-partners", "Partner", "Partners", "partner:manage"], ["admin-users", "Pengguna", "Users", "user:read"],
    ["admin-system-audit-logs", "Audit", "Audit"], ["admin-observability", "Observabilitas", "Observability"]],
  merchant: [["merchant-today", "Hari ini", "Today"], ["merchant-profile", "Profil", "Profile"], ["merchant-settlement-summary", "Settlement", "Settlement"],
    ["merchant-settlement-batches", "Batch", "Batches"], ["merchant-transactions", "Transaksi", "Transactions"]],
};

// The nav entry a page belongs to: a detail page to its list.
function navSection(slug) {
  if (slug === "admin-device-detail") return "admin-device-registry";
  if (slug === "merchant-settlement-batch-detail") return "merchant-settlement-batches";
  if (slug.endsWith("-terminal-poster")) return slug.startsWith("admin-") ? "admin-merchants" : "merchant-profile";
  if (slug.endsWith("-detail")) return (NAV[audience].find(([list]) => list.replace(/e?s$/, "") === slug.slice(0, -7)) || [slug])[0];
  return slug;
}

function layout() {
  const current = session();
  $("lang").textContent = lang === "en" ? "ID" : "EN";
  $("lang").addEventListener("click", () => {
    localStorage.setItem(LANG_KEY, lang === "en" ? "id" : "en");
    location.reload();
  });
  for (const node of document.querySelectorAll("[data-en]")) if (lang === "en") node.textContent = node.dataset.en;
  document.documentElement.lang = lang;
  if (!current || page.endsWith("-login") || page === "catalogue" || page === "not-found") return;
  // An entry naming a permission is for the roles that work with it (finance, admin).
  $("nav").replaceChildren(...NAV[current.kind].filter(([, , , permission]) => !permission || may(permission)).map(([slug, id, en]) =>
    h("a", { href: "/ui/" + slug, class: navSection(page) === slug ? "current" : null }, lang === "en" ? en : id)));
  $("menu").hidden = false;
  $("menu").addEventListener("click", () => {
    const open = document.body.classList.toggle("menu-open");
    $("menu").setAttribute("aria-expanded", String(open));
  });
  if (current.kind === "admin") {
    const box = h("form", { id: "topsearch", action: "/ui/admin-search", method: "get", role: "search" },
      h("input", { type: "search", name: "q", placeholder: t("Cari…"), "aria-label": t("Cari"), value: page === "admin-search" ? query().get("q") || "" : "" }));
    $("nav").after(box);
  }
  $("who").textContent = current.email + " · " + current.role;
  $("logout").hidden = false;
  $("logout").addEventListener("click", async () => {
    try { await post("/" + current.kind + "/logout"); } catch (_) { /* the token may be gone already */ }
    sessionStorage.removeItem(SESSION_KEY);
    location.assign("/ui/" + current.kind + "-login");
  });
}

function setTitle(title) {
  $("title").textContent = title;
  document.title = title + " · QRIS Soundbox";
}

// ---------------------------------------------------------------- pages: login

function loginPage(kind) {
  const landing = kind === "admin" ? "admin-dashboard-overview" : "merchant-today";
  const errors = h("div", {});
  if (sessionStorage.getItem("qris.console.expired")) {
    sessionStorage.removeItem("qris.console.expired");
    errors.append(h("div", { class: "error" }, t("Sesi berakhir. Silakan masuk lagi.")));
  }
  const form = h("form", { method: "post" },
    field("email", "Email", { type: "email", required: true, autocomplete: "username", autofocus: true }),
    field("password", "Kata sandi", { type: "password", required: true, autocomplete: "current-password" }),
    h("button", { type: "submit" }, t("Masuk")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const values = formValues(form);
    form.querySelector("button").disabled = true;
    try {
      const result = await api("POST", "/" + kind + "/login", { email: values.email, password: values.password }, { anonymous: true });
      const role = result.user.role;
      const permissions = (ROLE_PERMISSIONS[kind] || {})[role] || [];
      sessionStorage.setItem(SESSION_KEY, JSON.stringify({
        kind, token: result.token, expires_at: result.expires_at, role, email: result.user.email, user_id: result.user.id,
        merchant_id: result.user.merchant_id, permissions,
      }));
      const next = query().get("next");
      location.assign(next && next.startsWith("/ui/" + kind + "-") ? next : "/ui/" + landing);
    } catch (error) {
      errors.replaceChildren(errorBox(error));
      form.querySelector("button").disabled = false;
    }
  });
  show(h("div", { class: "card login" }, errors, form,
    h("p", { class: "muted" }, kind === "admin" ? link("merchant-login", {}, t("Masuk merchant")) : link("admin-login", {}, t("Masuk admin")))));
}

// ---------------------------------------------------------------- pages: admin

async function dashboardPage() {
  const kpis = h("div", { class: "grid", id: "kpis" });
  const latest = h("div", {});
  const stamp = poll(async () => {
    const [summary, observability] = await Promise.all([get("/admin/dashboard/summary"), get("/admin/observability/summary")]);
    const outbox = observability.outbox || {};
    const kpi = (id, label, value) => h("div", { class: "card kpi", "data-kpi": id }, h("div", { class: "label" }, t(label)), h("div", { class: "value" }, value));
    kpis.replaceChildren(
      kpi("transaction_count", "Transaksi hari ini", String(summary.today.transaction_count)),
      kpi("paid_count", "Dibayar hari ini", String(summary.today.paid_count)),
      kpi("paid_volume", "Nilai dibayar hari ini", money(summary.today.paid_volume)),
      kpi("devices_online", "Perangkat online", String(observability.devices_online)),
      kpi("outbox_pending", "Outbox tertunda", String((outbox.pending || 0) + (outbox.sent || 0))),
      kpi("outbox_failed", "Outbox gagal/kedaluwarsa", String((outbox.failed || 0) + (outbox.expired || 0))),
      kpi("pending_payout", "Payout tertunda", money(summary.pending_payout_amount)),
      kpi("paid_payout", "Payout dibayar", money(summary.paid_payout_amount)),
      kpi("adjustments", "Penyesuaian", money(summary.settlement_adjustment_amount)),
      kpi("unbatched", "Belum di-batch", money(summary.unbatched_payable_amount)),
      kpi("platform_fee", "Biaya platform", money(summary.platform_fee_total)));
    latest.replaceChildren(card("Batch terbaru", summary.latest_batches.length ? batchTable(summary.latest_batches, "admin") :
      empty("Belum ada batch. Batch dibuat oleh tim keuangan dari pembayaran yang belum di-batch.")));
    const recent = await get("/admin/transactions", { limit: 10 });
    latest.append(card("Transaksi", recent.items.length ? transactionTable(recent.items, "admin") :
      empty("Belum ada transaksi. Transaksi muncul saat pelanggan membayar QRIS.")));
  });
  show(stamp, kpis, latest);
}

function transactionTable(items, side) {
  return h("table", { "data-list": "transactions" },
    h("thead", {}, h("tr", {}, ["Dibuat", "Referensi", "Jumlah", "Status", "Terminal", side === "admin" ? "Merchant" : null].filter(Boolean).map((c) => h("th", {}, t(c))))),
    h("tbody", {}, items.map((tx) => h("tr", { "data-id": tx.id },
      h("td", { "data-label": t("Dibuat") }, time(tx.created_at)),
      h("td", { "data-label": t("Referensi") }, side === "admin" ? link("admin-transaction-detail", { id: tx.id }, tx.reference) : tx.reference),
      h("td", { class: "num", "data-label": t("Jumlah") }, money(tx.amount)), h("td", { "data-label": t("Status") }, badge(tx.status)),
      h("td", { "data-label": t("Terminal") }, terminalLabel(tx)),
      side === "admin" ? h("td", { "data-label": t("Merchant") }, merchantLink(tx)) : null))));
}

function batchTable(items, side) {
  const detail = side === "admin" ? "admin-settlement-batch-detail" : "merchant-settlement-batch-detail";
  return h("table", { "data-list": "batches" },
    h("thead", {}, h("tr", {}, ["Dibuat", "Batch", "Merchant", "Status", "Jumlah"].map((c) => h("th", {}, t(c))))),
    h("tbody", {}, items.map((b) => h("tr", { "data-id": b.id }, h("td", { "data-label": t("Dibuat") }, time(b.created_at)),
      h("td", { "data-label": t("Batch") }, link(detail, { id: b.id }, b.id)), h("td", { "data-label": t("Merchant") }, b.merchant_name || b.merchant_id),
      h("td", { "data-label": t("Status") }, badge(b.status)), h("td", { class: "num", "data-label": t("Jumlah") }, money(b.adjusted_payable_amount))))));
}

const MERCHANT_STATUSES = statusOptions("pending_review", "active", "rejected", "suspended");

async function merchantsPage() {
  const create = may("merchant:write") ? action("Merchant baru", () => formDialog("Merchant baru",
    [field("name", "Nama", { required: true }), field("city", "Kota", { required: true }), field("nmid", "NMID"),
      field("postal_code", "Kode pos"), field("email", "Email", { type: "email" })],
    async (values) => {
      const merchant = await post("/admin/merchants", clean(values));
      location.assign(pageUrl("admin-merchant-detail", { id: merchant.id }));
    }), { id: "new-merchant" }) : null;
  const list = await listView({
    path: "/admin/merchants",
    filters: [{ name: "q", label: "Nama, kode atau NMID", attrs: { type: "search" } }, { name: "status", label: "Status", attrs: { options: MERCHANT_STATUSES } }],
    columns: [["Dibuat", (m) => time(m.created_at)], ["Nama", (m) => link("admin-merchant-detail", { id: m.id }, m.name)],
      ["Kode", (m) => m.code], ["Kota", (m) => m.city], ["NMID", (m) => m.nmid || "—"], ["Status", (m) => badge(m.status)]],
    rowLink: (m) => pageUrl("admin-merchant-detail", { id: m.id }),
    emptyText: "Belum ada merchant. Buat merchant baru untuk memulai.",
  });
  show(h("div", { class: "actions" }, create), list);
}

async function merchantDetailPage() {
  const id = query().get("id");
  const merchant = await get("/admin/merchants/" + encodeURIComponent(id));
  setTitle(merchant.name);
  const payoutBase = `/admin/merchants/${encodeURIComponent(id)}/payout-account`;
  const [outlets, terminals, payout] = await Promise.all([
    get("/admin/outlets", { merchant_id: id, limit: 200 }), get("/admin/terminals", { merchant_id: id, limit: 200 }), get(payoutBase),
  ]);
  const reload = () => reloadDone();
  const decisions = merchant.status === "pending_review" && may("merchant:approve") ? h("div", { class: "actions" },
    action("Setujui", async () => {
      if (!await confirmed("Setujui", "Setujui merchant ini? Setelah disetujui merchant dapat menerima pembayaran.")) return;
      await post(`/admin/merchants/${id}/approve`); reloadDone("Merchant disetujui.");
    }, { id: "approve" }),
    action("Tolak", () => formDialog("Tolak", [field("reason", "Alasan", { required: true })], async (v) => {
      await post(`/admin/merchants/${id}/reject`, { reason: v.reason }); reload();
    }), { class: "danger", id: "reject" })) : null;
  const outletCards = outlets.items.map((outlet) => {
    const own = terminals.items.filter((term) => term.outlet_id === outlet.id);
    return card(null, h("h2", {}, outlet.name, " ", badge(outlet.status)), h("div", { class: "muted" }, [outlet.address, outlet.city].filter(Boolean).join(", ")),
      own.length ? h("div", { class: "grid" }, own.map((term) => terminalCard(term, "admin"))) : empty("Tidak ada terminal."),
      may("terminal:write") ? action("Terminal baru", () => formDialog("Terminal baru",
        [field("name", "Nama", { required: true }), field("static_qris", "QRIS statis", { placeholder: "000201010211…" })],
        async (v) => { await post(`/admin/outlets/${outlet.id}/terminals`, clean(v)); reload(); }), { class: "secondary", "data-new-terminal": outlet.id }) : null);
  });
  show(decisions, card("Detail", kv([["ID", copyable(merchant.id)], ["Kode", merchant.code], ["Status", badge(merchant.status)], ["Kota", merchant.city],
    ["NMID", merchant.nmid], ["MCC", merchant.mcc], ["Email", merchant.email], ["Kategori MDR", merchant.mdr_category], ["Biaya (bps)", merchant.fee_bps ?? "default"],
    ["Alasan", merchant.rejection_reason], ["Dibuat", time(merchant.created_at)]]), feeAction(merchant)),
    payoutAccountCard(payoutBase, payout),
    may("user:read") ? h("p", {}, link("admin-users", { kind: "merchant", merchant_id: merchant.id }, t("Pengguna merchant ini"))) : null,
    h("h2", {}, t("Outlet")),
    outletCards.length ? outletCards : empty("Tidak ada outlet. Tambahkan outlet di bawah."),
    may("outlet:write") ? action("Outlet baru", () => formDialog("Outlet baru",
      [field("name", "Nama", { required: true }), field("address", "Alamat"), field("city", "Kota")],
      async (v) => { await post(`/admin/merchants/${id}/outlets`, clean(v)); reload(); }), { id: "new-outlet" }) : null,
    h("p", {}, link("admin-transactions", { merchant_id: id }, t("Transaksi")), " · ", link("admin-settlement-batches", { merchant_id: id }, t("Batch"))));
}

// What a merchant pays (docs/finance.md "MDR by merchant category"): its category and a contract below
// the schedule; the API refuses a contract above it (fee_above_schedule) and the dialog shows that error.
function feeAction(merchant) {
  if (!may("merchant:fees")) return null;
  return action("Ubah biaya", async () => {
    const rows = await get("/admin/mdr-schedules");
    const categories = [...new Set(rows.items.map((r) => r.category))];
    formDialog("Biaya merchant", [
      field("mdr_category", "Kategori MDR", { options: categories.map((c) => [c, c]), value: merchant.mdr_category }),
      field("fee_bps", "Kontrak (bps)", { inputmode: "numeric", value: merchant.fee_bps ?? "", placeholder: "jadwal MDR" })],
    async (v) => {
      await api("PATCH", `/admin/merchants/${merchant.id}/fees`, { mdr_category: v.mdr_category, fee_bps: v.fee_bps === "" ? null : Number(v.fee_bps) });
      location.reload();
    });
  }, { id: "edit-fees", class: "secondary" });
}

// Where a merchant is paid (docs/finance.md "Payout accounts"). The API masks the number for roles
// without payout_account:read; the page says so from the same role table. A change is refused
// while a batch of the merchant is pending: the refusal names those batches.
function payoutAccountCard(base, state) {
  const current = state.current;
  const edit = may("payout_account:write") ? action(current ? "Ubah rekening" : "Atur rekening", async () => {
    const banks = await get("/admin/payout-banks");
    formDialog("Rekening pencairan", [
      field("bank_code", "Bank", { options: banks.items.filter((b) => b.active).map((b) => [b.code, b.code + " · " + b.name]), value: current ? current.bank_code : "" }),
      field("account_number", "Nomor rekening", { required: true, inputmode: "numeric", autocomplete: "off" }),
      field("account_name", "Nama pemilik rekening", { required: true, value: current ? current.account_name : "" }),
      h("p", { class: "muted" }, t("Perubahan ditolak selama merchant punya batch tertunda: bayar atau batalkan batch itu dahulu."))],
    async (v) => { await put(base, v); reloadDone(); });
  }, { id: "set-payout-account", class: "secondary" }) : null;
  return h("section", { class: "card", id: "payout-account" }, h("h2", {}, t("Rekening pencairan")),
    current ? accountView(current) : empty("Belum ada rekening pencairan.", "Atur rekening sebelum membuat batch: batch tanpa rekening tidak dapat dibayar."),
    may("payout_account:read") ? null : h("p", { class: "muted" }, t("Nomor lengkap hanya untuk peran dengan izin payout_account:read.")),
    edit,
    state.history.length ? [h("h2", {}, t("Riwayat")), simpleTable(state.history, [["Dibuat", (a) => time(a.created_at)],
      ["Bank", (a) => a.bank_code + " · " + a.bank_name], ["Nomor rekening", (a) => h("code", {}, a.account_number)],
      ["Nama pemilik rekening", (a) => a.account_name], ["Pelaku", (a) => a.created_by_type + " " + (a.created_by || "")]], "payout-account-history")] : null);
}

// One payout account: its number as the API gave it (masked: all but the last four digits hidden).
function accountView(account) {
  return kv([["Bank", account.bank_code + " · " + account.bank_name],
    ["Nomor rekening", [h("code", { "data-account-number": account.masked ? "masked" : "full" }, account.account_number),
      account.masked ? h("span", { class: "muted" }, " (" + t("disamarkan") + ")") : null]],
    ["Nama pemilik rekening", account.account_name], ["Dibuat", time(account.created_at)]]);
}

// A terminal with its static QRIS as a QR image (SVG on the page, PNG to print a sticker).
function terminalCard(terminal, side = "admin") {
  const base = `/${side}/terminals/${encodeURIComponent(terminal.id)}/qris`;
  return h("div", { class: "card", "data-terminal": terminal.id }, h("strong", {}, terminal.name), " ", badge(terminal.status),
    h("div", { class: "muted" }, terminal.terminal_code),
    side === "admin" && terminal.bound_device ? h("div", {}, t("Perangkat"), ": ", link("admin-device-detail", { id: terminal.bound_device.id }, terminal.bound_device.serial_number || terminal.bound_device.id)) : null,
    terminal.static_qris ? [qrImage(base + ".svg", t("QRIS statis") + " " + terminal.name),
      action("Unduh PNG", () => download(base + ".png", `qris-${terminal.terminal_code}.png`), { class: "secondary", "data-download": "png" })]
      : h("div", { class: "muted" }, t("Tanpa QRIS statis")),
    terminal.static_qris ? link(side + "-terminal-poster", { id: terminal.id }, t("Poster A6 untuk dicetak")) : null);
}

// The terminal's QRIS poster: an A6 page to print and stick by the till, laid out as merchants
// know it (the QRIS mark, the merchant's name, the QR, the NMID and the terminal code).
async function posterPage() {
  const side = audience;
  const id = query().get("id");
  const terminal = await get(`/${side}/terminals/${encodeURIComponent(id)}`);
  const merchant = side === "admin" ? await get("/admin/merchants/" + encodeURIComponent(terminal.merchant_id)) : (await get("/merchant/profile")).merchant;
  setTitle(t("Poster QRIS") + " " + terminal.terminal_code);
  const base = `/${side}/terminals/${encodeURIComponent(id)}/qris`;
  show(h("div", { class: "actions no-print" }, h("button", { type: "button", id: "print", onclick: () => window.print() }, t("Cetak")),
    h("span", { class: "muted" }, t("Ukuran A6; pilih skala 100% saat mencetak."))),
  h("article", { class: "poster", id: "poster" },
    h("div", { class: "poster-mark" }, "QRIS"),
    h("div", { class: "poster-merchant" }, merchant.name),
    terminal.static_qris ? qrImage(base + ".svg", "QRIS " + merchant.name) : h("div", { class: "empty" }, t("Tanpa QRIS statis")),
    h("div", { class: "poster-ids" }, h("div", {}, "NMID: ", h("strong", {}, merchant.nmid || "—")),
      h("div", {}, t("Terminal") + ": ", h("strong", {}, terminal.terminal_code), " · " + terminal.name)),
    h("div", { class: "poster-foot" }, t("Satu QRIS untuk semua aplikasi pembayaran"))));
}

// The QR image comes from the API with the bearer token, so it is fetched and shown as a blob URL.
function qrImage(path, alt) {
  const img = h("img", { class: "qr", alt, "data-qr": path });
  api("GET", path, undefined, { blob: true }).then((blob) => { img.src = URL.createObjectURL(blob); }).catch((error) => img.replaceWith(errorBox(error)));
  return img;
}

const DEVICE_STATUSES = statusOptions("registered", "active", "disabled", "retired");
const YES_NO = [["", "Semua"], ["true", "Ya / yes"], ["false", "Tidak / no"]];

async function deviceRegistryPage() {
  const create = may("device:write") ? action("Daftarkan perangkat", async () => {
    const models = await get("/admin/device-models", { limit: 200 });
    formDialog("Daftarkan perangkat", [field("serial_number", "Serial", { required: true }),
      field("model", "Model", { options: models.items.map((m) => [m.id, m.name]) })],
    async (v) => {
      const device = await post("/admin/devices", v);
      location.assign(pageUrl("admin-device-detail", { id: device.id }));
    });
  }, { id: "register-device" }) : null;
  const list = await listView({
    live: true,
      path: "/admin/devices",
      filters: [{ name: "q", label: "Nomor seri", attrs: { type: "search", id: "serial-search", placeholder: "SB-…" } },
        { name: "status", label: "Status", attrs: { options: DEVICE_STATUSES } }, { name: "online", label: "Online", attrs: { options: YES_NO } },
        { name: "drift", label: "Drift konfigurasi", attrs: { options: YES_NO } }, { name: "model", label: "Model" }, { name: "merchant_id", hidden: true }],
      columns: [["Serial", (d) => link("admin-device-detail", { id: d.id }, d.serial_number)], ["Model", (d) => d.model], ["Status", (d) => badge(d.status)],
        ["Online", (d) => badge(d.online ? "online" : "offline")], ["Kesehatan", (d) => [badge(d.health_summary.status), " " + d.health_summary.score]],
        ["Terakhir terlihat", (d) => time(d.last_seen_at)], ["Baterai", (d) => (d.battery_level ?? "—") + "", "num"],
        ["Terminal", (d) => (d.terminal_id ? [terminalLabel(d), h("div", { class: "muted" }, d.merchant_name)] : "—")],
        ["Aksi", (d) => (query().get("drift") === "true" && may("device:config") ? action("Ulangi push konfigurasi", async () => {
          await post(`/admin/devices/${d.id}/config/retry-push`); notice(t("Berhasil."));
        }, { class: "secondary" }) : "")]],
      rowLink: (d) => pageUrl("admin-device-detail", { id: d.id }),
      summary: healthSummary,
      emptyText: "Belum ada perangkat. Daftarkan perangkat dengan nomor seri dan modelnya.",
  });
  show(h("div", { class: "actions" }, create, link("admin-device-registry", { drift: "true" }, t("Drift konfigurasi"))), list,
    await deviceModelsCard());
}

// The models and what their wire dialect can carry: a model whose announcements cannot be signed
// plays a forged "payment received" like a real one (docs/announcement-signing.md).
async function deviceModelsCard() {
  const models = await get("/admin/device-models", { limit: 200 });
  return card("Model perangkat", simpleTable(models.items, [["Model", (m) => m.name], ["ID", (m) => m.id], ["Dialek", (m) => m.dialect],
    ["Pengumuman bertanda tangan", (m) => h("span", { class: "badge long " + (m.signs_announcements ? "ok" : "bad"), "data-signed": String(m.signs_announcements) },
      t(m.signs_announcements ? "Ya: pengumuman palsu ditolak" : "Tidak: bisa ditipu pengumuman palsu"))]], "device-models"));
}

// The health of the devices on this page, by status: what a technician looks at first.
function healthSummary(devices) {
  const counts = {};
  for (const d of devices) counts[d.health_summary.status] = (counts[d.health_summary.status] || 0) + 1;
  const online = devices.filter((d) => d.online).length;
  return h("div", { class: "actions", id: "health-summary" }, h("span", { class: "muted" }, t("Di halaman ini") + ":"),
    badge("online"), " " + online, ...Object.entries(counts).map(([status, n]) => [badge(status), " " + n]));
}

async function deviceDetailPage() {
  const id = query().get("id");
  const base = "/admin/devices/" + encodeURIComponent(id);
  const device = await get(base);
  setTitle(t("Perangkat") + " " + device.serial_number);
  const reload = () => reloadDone();
  const controls = h("div", { class: "actions" },
    may("device:credential") && device.status !== "retired" ? action("Putar kredensial", async () => {
      if (!await confirmed("Putar kredensial", "Kredensial lama langsung berhenti berlaku: perangkat terputus sampai rahasia baru dipasang. Lanjutkan?")) return;
      rotated(await post(base + "/credentials/rotate"));
    }, { id: "rotate", class: "danger" }) : null,
    may("device:bind") && !device.terminal_id ? action("Ikat ke terminal", () => bindDialog(base), { id: "bind" }) : null,
    may("device:bind") && device.terminal_id ? action("Lepas", async () => {
      if (!await confirmed("Lepas", "Lepas perangkat dari terminalnya? Pembayaran berikutnya tidak diumumkan perangkat ini.")) return;
      await post(base + "/unbind"); reload();
    }, { class: "secondary", id: "unbind" }) : null,
    may("device:command") && device.terminal_id ? action("Kirim tes suara", async () => {
      await post(base + "/commands", { type: "play_test_sound" }); reloadDone("Tes suara dikirim ke perangkat.");
    }, { id: "test-sound" }) : null,
    may("device:write") && device.status === "active" ? action("Nonaktifkan", async () => { await post(base + "/disable", {}); reload(); }, { class: "secondary" }) : null,
    may("device:write") && device.status === "disabled" ? action("Aktifkan", async () => { await post(base + "/enable"); reload(); }, { class: "secondary" }) : null,
    may("device:command") ? action("Kirim perintah", () => formDialog("Kirim perintah", [
      field("type", "Jenis", { options: ["reboot", "play_test_sound", "sync_time", "set_volume", "ota_update"].map((c) => [c, c]) }),
      field("params", "Parameter (JSON)", { placeholder: '{"volume": 70}' })],
    async (v) => {
      let params;
      try { params = v.params ? JSON.parse(v.params) : undefined; } catch (_) { throw new Error(t("Parameter (JSON)") + ": JSON?"); }
      await post(base + "/commands", { type: v.type, params }); reload();
    }), { class: "secondary", id: "send-command" }) : null);
  const live = h("div", {});
  show(controls, live);
  const stamp = poll(async () => {
    const [fresh, config, status, commands, notifications, trace] = await Promise.all([
      get(base), get(base + "/config"), get(base + "/config/status"), get(base + "/commands", { limit: 20 }),
      get(base + "/notifications", { limit: 20 }), get(base + "/mqtt-messages", { limit: 30 }),
    ]);
    live.replaceChildren(
      card("Detail", kv([["ID", copyable(fresh.id)], ["Serial", fresh.serial_number], ["Status", badge(fresh.status)], ["Online", badge(fresh.online ? "online" : "offline")],
        ["Kesehatan", [badge(fresh.health_summary.status), " " + fresh.health_summary.score + " " + fresh.health_summary.reasons.join(", ")]],
        ["Model", fresh.model], ["Terminal", fresh.terminal_id ? [terminalLabel(fresh), " ", copyable(fresh.terminal_id)] : null],
        ["Outlet", fresh.outlet_name], ["Merchant", fresh.merchant_id ? merchantLink(fresh) : null], ["MQTT username", h("code", {}, fresh.mqtt_username)],
        ["Fingerprint", fresh.credential.fingerprint], ["Diputar", time(fresh.credential.rotated_at)], ["Terakhir terlihat", time(fresh.last_seen_at)],
        ["Baterai", fresh.battery_level], ["Sinyal", fresh.network_strength], ["Firmware", fresh.firmware_version]])),
      card("Bayangan konfigurasi", kv([["Drift konfigurasi", badge(status.drift ? "mismatched" : "matched")], ["Versi", `${status.desired_version} / ${status.reported_version ?? "—"}`],
        ["Push", status.pending_ack ? "pending_ack" : "—"], ["Terakhir", time(status.last_push_at)]]),
        status.drift && may("device:config") ? action("Ulangi push konfigurasi", async () => { await post(base + "/config/retry-push"); notice(t("Berhasil.")); }, { class: "secondary" }) : null,
        h("div", { class: "two" }, h("div", {}, h("h2", {}, t("Diinginkan")), h("pre", {}, JSON.stringify(config.desired, null, 2))),
          h("div", {}, h("h2", {}, t("Dilaporkan")), h("pre", {}, JSON.stringify(config.reported, null, 2))))),
      card("Notifikasi", notifications.items.length ? simpleTable(notifications.items, [["Dibuat", (n) => time(n.created_at)], ["Jenis", (n) => n.kind],
        ["Status", (n) => badge(n.status)], ["Transaksi", (n) => n.transaction_id ? link("admin-transaction-detail", { id: n.transaction_id }, n.transaction_id) : "—"],
        ["Percobaan", (n) => String(n.attempts)], ["Di-ack", (n) => time(n.acked_at)]], "notifications") : empty("Tidak ada notifikasi.")),
      card("Perintah", commands.items.length ? simpleTable(commands.items, [["Dibuat", (c) => time(c.created_at)], ["Jenis", (c) => c.type],
        ["Status", (c) => badge(c.status)], ["Detail", (c) => c.detail || "—"]], "commands") : empty("Tidak ada perintah.")),
      card("Jejak MQTT", trace.items.length ? simpleTable(trace.items, [["Waktu", (m) => time(m.created_at)], ["Arah", (m) => m.direction],
        ["Topik", (m) => m.topic], ["Payload", (m) => h("code", {}, m.payload.slice(0, 160))]], "mqtt-trace") : empty("Tidak ada pesan MQTT.")));
  });
  controls.after(stamp);
}

function simpleTable(items, columns, name) {
  return h("table", { "data-list": name }, h("thead", {}, h("tr", {}, columns.map(([label]) => h("th", {}, t(label))))),
    h("tbody", {}, items.map((item) => h("tr", { "data-id": item.id }, columns.map(([label, render]) => h("td", { "data-label": t(label) }, render(item)))))));
}

// The one time a secret (a device's, a user's temporary password) exists in the browser: in this dialog's
// DOM, never in storage. Closing the dialog removes it and reloads; the API cannot show it again.
function oneTimeSecret(title, value, pairs, message) {
  const dialog = $("dialog");
  const secret = h("div", { class: "secret", id: "secret" }, value);
  const copy = h("button", { type: "button", class: "secondary", id: "copy-secret" }, t("Salin"));
  copy.addEventListener("click", async () => {
    try { await navigator.clipboard.writeText(value); } catch (_) {
      const range = document.createRange(); range.selectNodeContents(secret); getSelection().removeAllRanges(); getSelection().addRange(range);
      document.execCommand("copy");
    }
    copy.textContent = t("Tersalin");
  });
  dialog.replaceChildren(h("h2", {}, t(title)),
    h("p", { class: "error" }, t("Rahasia ini hanya ditampilkan sekali. Salin sekarang; setelah dialog ditutup rahasia tidak dapat dipulihkan.")),
    kv(pairs(secret)),
    h("div", { class: "actions" }, copy, h("button", { type: "button", id: "close-secret", onclick: () => dialog.close() }, t("Saya sudah menyimpannya"))));
  dialog.addEventListener("close", () => { dialog.replaceChildren(); message ? reloadDone(message) : location.reload(); }, { once: true });
  dialog.showModal();
}

function rotated(credential) {
  oneTimeSecret("Kredensial baru", credential.mqtt_password, (secret) => [
    ["MQTT username", h("code", { id: "mqtt-username" }, credential.mqtt_username)], ["Client id", h("code", {}, credential.mqtt_client_id)],
    ["Secret", secret], ["Broker", h("code", { id: "broker" }, credential.broker.host + ":" + credential.broker.port)],
    ["Fingerprint", credential.fingerprint]]);
}

const TX_STATUSES = statusOptions("pending", "paid", "expired", "failed", "partially_refunded", "refunded");

function transactionColumns(side) {
  return [["Dibuat", (tx) => time(tx.created_at)],
    ["Referensi", (tx) => (side === "admin" ? link("admin-transaction-detail", { id: tx.id }, tx.reference) : tx.reference)],
    ["Jumlah", (tx) => money(tx.amount), "num"], ["Status", (tx) => badge(tx.status)], ["Jenis transaksi", (tx) => tx.kind],
    ["Terminal", terminalLabel], ["RRN", (tx) => tx.provider_reference || "—"], ["Dibayar", (tx) => time(tx.paid_at)]];
}

async function transactionsPage() {
  show(await listView({
    path: "/admin/transactions",
    filters: [{ name: "q", label: "Referensi, RRN atau jumlah", attrs: { type: "search" } }, { name: "status", label: "Status", attrs: { options: TX_STATUSES } },
      { name: "merchant_id", hidden: true }, { name: "terminal_id", hidden: true }, { name: "from", label: "Dari", attrs: { type: "date" } },
      { name: "to", label: "Sampai", attrs: { type: "date" } }],
    columns: [...transactionColumns("admin"), ["Merchant", merchantLink]],
    rowLink: (tx) => pageUrl("admin-transaction-detail", { id: tx.id }),
    emptyText: "Belum ada transaksi. Transaksi muncul saat pelanggan membayar QRIS.",
  }));
}

async function transactionDetailPage() {
  const id = query().get("id");
  const base = "/admin/transactions/" + encodeURIComponent(id);
  const [tx, events, refunds] = await Promise.all([get(base), get(base + "/events"), get(base + "/refunds", { limit: 200 })]);
  const device = tx.device_id ? await get("/admin/devices/" + encodeURIComponent(tx.device_id)) : null;
  setTitle(t("Transaksi") + " " + tx.reference);
  const note = tx.notification;
  show(h("div", { class: "actions" }, tx.status === "paid" && may("transaction:write") ? action("Ulangi notifikasi", async () => {
    await post(base + "/retry-notification"); reloadDone();
  }, { id: "retry-notification" }) : null, refundButton(tx, base, refunds.items)),
  h("div", { class: "two" }, card("Detail", kv([["ID", copyable(tx.id)], ["Referensi", tx.reference], ["RRN", tx.provider_reference],
    ["Jumlah", money(tx.amount)], ["Status", badge(tx.status)],
    ["Jenis transaksi", tx.kind], ["Merchant", merchantLink(tx)], ["Terminal", [terminalLabel(tx), " ", copyable(tx.terminal_id)]],
    ["Perangkat", device ? link("admin-device-detail", { id: device.id }, device.serial_number) : null], ["Biaya (bps)", String(tx.fee_bps)],
    ["Dibuat", time(tx.created_at)], ["Dibayar", time(tx.paid_at)], ["Kedaluwarsa", time(tx.expires_at)], ["Alasan", tx.failure_reason],
    ["Notifikasi", note ? [badge(note.status), " " + note.attempts + "× · ", time(note.acked_at)] : "—"]])),
  tx.qr_payload ? card("Payload QR dinamis", qrImage(base + "/qris.svg", "QRIS " + tx.reference), h("pre", {}, tx.qr_payload),
    action("Unduh PNG", () => download(base + "/qris.png", `qris-${tx.reference}.png`), { class: "secondary" })) : h("div", {})),
  card("Pengembalian dana", refunds.items.length ? simpleTable(refunds.items, refundColumns(false), "refunds") : empty("Belum ada pengembalian dana.")),
  card("Kejadian", events.items.length ? simpleTable(events.items, [["Waktu", (e) => time(e.created_at)], ["Jenis", (e) => e.event_type],
    ["Status", (e) => `${e.from_status || "—"} → ${e.to_status || "—"}`], ["Sumber", (e) => e.source]], "events") : empty("Tidak ada entri.")));
}

// What is left of a payment once every refund not failed or rejected is counted (the database decides; this only fills the form).
function refundable(tx, refunds) {
  return tx.amount - refunds.filter((r) => !["failed", "rejected"].includes(r.status)).reduce((sum, r) => sum + r.amount, 0);
}

// The refund button: a form with the amount (the rest by default), the reason and a confirmation box.
function refundButton(tx, base, refunds) {
  if (!["paid", "partially_refunded"].includes(tx.status) || !may("transaction:refund")) return null;
  const left = refundable(tx, refunds);
  if (left <= 0) return null;
  return action("Kembalikan dana", () => formDialog("Kembalikan dana", [
    h("p", {}, t("Sisa yang dapat dikembalikan") + ": " + money(left)),
    field("amount", "Jumlah", { type: "number", min: "1", max: String(left), step: "1", value: String(left), required: true }),
    field("reason", "Alasan pengembalian", { maxlength: "500", required: true }),
    h("label", { class: "check" }, h("input", { type: "checkbox", name: "confirm", required: true }), t("Saya yakin: dana ini dikembalikan ke pelanggan")),
  ], async (v) => {
    const made = await post(base + "/refunds", { amount: Number(v.amount), reason: v.reason });
    reloadDone(made.status === "pending_approval" ? "Pengembalian dana menunggu persetujuan orang kedua." : "Berhasil.");
  }), { id: "refund" });
}

function refundColumns(withPayment) {
  return [["Dibuat", (r) => time(r.created_at)],
    ...(withPayment ? [["Transaksi asal", (r) => link("admin-transaction-detail", { id: r.transaction_id }, r.transaction_reference || r.transaction_id)],
      ["Merchant", (r) => r.merchant_name || r.merchant_id]] : []),
    ["Jumlah", (r) => money(r.amount), "num"], ["Status", (r) => badge(r.status)], ["Alasan", (r) => r.reason],
    ["Diminta oleh", (r) => r.requested_by], ["Diputuskan oleh", (r) => r.decided_by || "—"]];
}

const REFUND_STATUSES = statusOptions("pending_approval", "pending", "succeeded", "failed", "rejected");

// Refunds: first those waiting for a second person, to approve or reject (never one's own: the API
// refuses it), then every refund with filters.
async function refundsPage() {
  const decide = (r, verb, label) => action(label, async () => {
    await post(`/admin/refunds/${encodeURIComponent(r.id)}/${verb}`, {}); reloadDone();
  }, { "data-decide": verb });
  const waiting = await get("/admin/refunds", { status: "pending_approval", limit: 200 });
  const columns = refundColumns(true);
  const approvals = may("transaction:refund") ? [...columns, ["Aksi", (r) => [decide(r, "approve", "Setujui"), " ", decide(r, "reject", "Tolak")]]] : columns;
  show(card("Menunggu persetujuan", waiting.items.length ? simpleTable(waiting.items, approvals, "refund-approvals") : empty("Belum ada pengembalian dana.")),
    await listView({
      path: "/admin/refunds",
      filters: [{ name: "status", label: "Status", attrs: { options: REFUND_STATUSES } }, { name: "merchant_id", hidden: true }],
      columns,
      emptyText: "Belum ada pengembalian dana.",
    }));
}

const BATCH_STATUSES = statusOptions("pending", "paid", "failed", "cancelled");

function batchColumns(detail) {
  return [["Dibuat", (b) => time(b.created_at)], ["Batch", (b) => link(detail, { id: b.id }, b.id)], ["Merchant", (b) => b.merchant_name || b.merchant_id],
    ["Status", (b) => badge(b.status)], ["Entri", (b) => String(b.entry_count), "num"], ["Jumlah", (b) => money(b.gross_amount), "num"],
    ["Penyesuaian", (b) => money(b.adjustment_amount), "num"], ["Payout", (b) => money(b.adjusted_payable_amount), "num"],
    ["Tanggal valuta", (b) => b.value_date]];
}

async function batchesPage() {
  const created = query().get("created");
  if (created !== null) notice(t("Berhasil.") + " " + created + " batch");
  // Before anything is written: what the run would make (POST …/preview writes nothing), refreshed per pick.
  const preview = h("div", { id: "batch-preview" }, h("p", { class: "muted" }, t("Memuat…")));
  const showPreview = async (merchant) => {
    const p = await post("/admin/settlement-batches/preview", clean({ merchant_id: merchant ? merchant.id : null }));
    preview.replaceChildren(p.items.length ? h("div", {},
      kv([["Merchant", String(p.items.length)], ["Entri", String(p.entry_count)], ["Payable", money(p.payable_amount)],
        ["Batas waktu", time(p.cutoff)], ["Tanggal valuta", h("span", { "data-value-date": "" }, p.value_date)]]),
      p.missing_payout_accounts ? h("div", { class: "error", "data-missing-payout": String(p.missing_payout_accounts) },
        t("Tanpa rekening pencairan (batch dibuat, tetapi belum bisa dibayar)") + ": " + p.items.filter((x) => !x.has_payout_account).map((x) => x.merchant_name).join(", ")) : null,
      simpleTable(p.items.map((x) => Object.assign({ id: x.merchant_id }, x)), [["Merchant", (x) => x.merchant_name + " · " + x.merchant_code],
        ["Entri", (x) => String(x.entry_count)], ["Payable", (x) => money(x.payable_amount)],
        ["Rekening", (x) => (x.has_payout_account ? "✓" : h("span", { class: "badge bad", "data-no-payout": "" }, t("tidak ada")))]], "batch-preview"))
      : empty("Tidak ada payable yang belum di-batch: tidak ada batch yang akan dibuat."));
  };
  const create = may("settlement:write") ? action("Buat batch", () => formDialog("Buat batch",
    [merchantPicker({ optional: true, onpick: (m) => showPreview(m).catch((error) => preview.replaceChildren(errorBox(error))) }), preview],
    async (v) => {
      const created = await post("/admin/settlement-batches", clean(v));
      if (created.items.length === 1) location.assign(pageUrl("admin-settlement-batch-detail", { id: created.items[0].id }));
      else location.assign(pageUrl("admin-settlement-batches", { created: created.items.length }));
    }), { id: "create-batches" }) : null;
  show(h("div", { class: "actions" }, create), await listView({
    path: "/admin/settlement-batches",
    filters: [{ name: "status", label: "Status", attrs: { options: BATCH_STATUSES } }, { name: "merchant_id", hidden: true }],
    columns: batchColumns("admin-settlement-batch-detail"),
    rowLink: (b) => pageUrl("admin-settlement-batch-detail", { id: b.id }),
    emptyText: "Belum ada batch. Batch dibuat oleh tim keuangan dari pembayaran yang belum di-batch.",
  }));
}

function batchDetail(batch, csvBase, merchant) {
  // A bank file carries the full account number: only roles with payout_account:read get one,
  // and a batch built without an account has none.
  const bankFile = may("payout_account:read") && batch.payout_account;
  return [card("Detail", kv([["ID", copyable(batch.id)], ["Merchant", merchant ? link("admin-merchant-detail", { id: merchant.id }, merchant.name) : null], ["Status", badge(batch.status)], ["Entri", String(batch.entry_count)],
    ["Jumlah", money(batch.gross_amount)], ["Biaya", money(batch.fee_amount)], ["Payable", money(batch.payable_amount)],
    ["Penyesuaian", money(batch.adjustment_amount)], ["Payout", money(batch.adjusted_payable_amount)], ["Referensi payout", batch.payout_reference],
    ["Batas waktu", time(batch.cutoff)], ["Tanggal valuta", batch.value_date], ["Dibuat", time(batch.created_at)], ["Dibayar", time(batch.paid_at)],
    ["Alasan", batch.failure_reason || batch.cancellation_reason]])),
  csvBase ? h("div", { class: "actions" },
    action("CSV standar", () => download(csvBase + "?format=standard", `${batch.id}-standard.csv`), { class: "secondary", id: "csv-standard" }),
    bankFile ? action("CSV bank", () => download(csvBase + "?format=bank_generic", `${batch.id}-bank.csv`), { class: "secondary", id: "csv-bank" }) : null) : null,
  h("section", { class: "card", id: "batch-payout-account" }, h("h2", {}, t("Rekening pencairan")),
    batch.payout_account ? accountView(batch.payout_account) : empty("Batch ini dibuat tanpa rekening pencairan.")),
  card("Entri", batch.entries.length ? simpleTable(batch.entries, [["Transaksi", (e) => e.transaction_id || e.id], ["Jumlah", (e) => money(e.gross_amount ?? e.amount)],
    ["Biaya", (e) => money(e.fee_amount)], ["Payable", (e) => money(e.payable_amount)]], "entries") : empty("Tidak ada entri.")),
  card("Penyesuaian", batch.adjustments.length ? simpleTable(batch.adjustments, [["Waktu", (a) => time(a.created_at)], ["Jenis", (a) => a.adjustment_type],
    ["Jumlah", (a) => money(a.amount)], ["Alasan", (a) => a.reason]], "adjustments") : empty("Tidak ada entri.")),
  card("Riwayat", simpleTable(batch.events, [["Waktu", (e) => time(e.created_at)], ["Jenis", (e) => e.event_type],
    ["Status", (e) => `${e.from_status || "—"} → ${e.to_status || "—"}`], ["Pelaku", (e) => e.actor_type + " " + (e.actor_id || "")]], "history"))];
}

async function batchDetailPage() {
  const id = query().get("id");
  const base = "/admin/settlement-batches/" + encodeURIComponent(id);
  const batch = await get(base);
  const merchant = await get("/admin/merchants/" + encodeURIComponent(batch.merchant_id));
  setTitle(t("Batch") + " " + batch.id);
  const reload = () => reloadDone();
  const reason = (label, path) => action(label, () => formDialog(label, [h("p", {}, t("Status batch berubah dan tidak dapat dikembalikan.")), field("reason", "Alasan", { required: true })],
    async (v) => { await post(base + path, { reason: v.reason }); reload(); }), { class: "secondary", "data-action": path.slice(1) });
  const controls = h("div", { class: "actions" },
    batch.status === "pending" && may("settlement:pay") ? (batch.payout_account ? action("Tandai dibayar", () => formDialog("Tandai dibayar",
      [h("p", {}, t("Tandai batch ini dibayar?"), " ", money(batch.adjusted_payable_amount), " → ", merchant.name), field("payout_reference", "Referensi payout", { required: true }), field("note", "Catatan")],
      async (v) => { await post(base + "/mark-paid", clean(v)); reload(); }), { id: "mark-paid" })
      : [h("button", { type: "button", id: "mark-paid", disabled: true, "aria-describedby": "mark-paid-blocked" }, t("Tandai dibayar")),
        h("span", { class: "muted", id: "mark-paid-blocked" }, t("Tidak dapat ditandai dibayar: merchant belum punya rekening pencairan saat batch dibuat. Batalkan batch, atur rekening di halaman merchant, lalu buat batch lagi."),
          " ", link("admin-merchant-detail", { id: batch.merchant_id }, t("Rekening pencairan")))]) : null,
    batch.status === "pending" && may("settlement:write") ? [reason("Tandai gagal", "/mark-failed"), reason("Batalkan", "/cancel")] : null,
    ["failed", "cancelled"].includes(batch.status) && !batch.reprocessed_into_batch_id && may("settlement:write")
      ? action("Proses ulang", async () => { const made = await post(base + "/reprocess"); location.assign(pageUrl("admin-settlement-batch-detail", { id: made.id })); }, { id: "reprocess" }) : null,
    batch.status === "pending" && may("settlement:adjust") ? action("Tambah penyesuaian", () => formDialog("Tambah penyesuaian",
      [field("adjustment_type", "Jenis", { options: [["bank_fee", "bank_fee (−)"], ["chargeback", "chargeback (−)"], ["bonus", "bonus (+)"], ["correction", "correction (±)"]] }), field("amount", "Jumlah", { type: "number", required: true }),
        field("reason", "Alasan", { required: true })],
      async (v) => { await post(base + "/adjustments", { adjustment_type: v.adjustment_type, amount: Number(v.amount), reason: v.reason }); reload(); }),
    { class: "secondary", id: "adjust" }) : null);
  show(controls, batchDetail(batch, may("settlement:export") ? base + "/export.csv" : null, merchant));
}

async function reconciliationPage() {
  const params = query();
  const report = await get("/admin/reconciliation/settlement-batches", clean({ cursor: params.get("cursor"), merchant_id: params.get("merchant_id") }));
  const exportCard = card("Ekspor penyesuaian", h("p", { class: "muted" }, "CSV"), h("div", { id: "export-state" }));
  if (may("settlement:export")) {
    exportCard.append(action("Mulai ekspor", async () => {
      let job = await post("/admin/exports/settlement-adjustments", clean({ merchant_id: params.get("merchant_id") }));
      const state = $("export-state");
      while (["pending", "running"].includes(job.status)) {
        state.replaceChildren(badge(job.status), " " + job.id);
        await new Promise((resolve) => setTimeout(resolve, 1000));
        job = await get("/admin/exports/" + job.id);
      }
      state.replaceChildren(badge(job.status), " " + job.id + " · " + (job.row_count ?? 0) + " rows ",
        job.status === "completed" ? action("Unduh", () => download(`/admin/exports/${job.id}/download`, `adjustments-${job.id}.csv`), { id: "download-export" })
          : (job.error_message || ""));
    }, { id: "start-export" }));
  }
  const next = new URLSearchParams(params);
  next.set("cursor", report.next_cursor || "");
  show(h("p", {}, link("admin-acquirer-reports", {}, t("Laporan acquirer"))), h("div", { class: "grid" },
    h("div", { class: "card kpi" }, h("div", { class: "label" }, t("Tidak cocok")), h("div", { class: "value", "data-kpi": "mismatched" }, String(report.mismatched_count))),
    h("div", { class: "card kpi" }, h("div", { class: "label" }, t("Belum di-batch")), h("div", { class: "value" }, money(report.unbatched_payables.amount))),
    h("div", { class: "card kpi" }, h("div", { class: "label" }, t("Pengecualian callback")),
      h("div", { class: "value" }, String(Object.values(report.exception_counts).reduce((a, b) => a + b, 0))))),
  exportCard,
  card("Batch", report.items.length ? simpleTable(report.items.map((r) => Object.assign({ id: r.batch_id }, r)), [
    ["Batch", (r) => link("admin-settlement-batch-detail", { id: r.batch_id }, r.batch_id)], ["Merchant", (r) => r.merchant_id], ["Status", (r) => badge(r.status)],
    ["Payout", (r) => money(r.adjusted_payable_amount)], ["Ledger", (r) => money(r.ledger_payable_amount)],
    ["Cocok", (r) => [badge(r.matched ? "matched" : "mismatched"), " " + r.mismatches.join(", ")]]], "reconciliation")
    : empty("Belum ada batch. Batch dibuat oleh tim keuangan dari pembayaran yang belum di-batch."),
  report.next_cursor ? h("div", { class: "pager" }, h("a", { href: "?" + next }, t("Berikutnya"))) : null),
  card("Pengecualian callback", report.exceptions.length ? simpleTable(report.exceptions, [["Waktu", (e) => time(e.created_at)], ["Jenis", (e) => e.kind],
    ["Transaksi", (e) => e.transaction_id || "—"], ["Diharapkan", (e) => money(e.expected_amount)], ["Diterima", (e) => money(e.received_amount)]], "exceptions")
    : empty("Tidak ada pengecualian.")));
}

// ---------------------------------------------------------------- acquirer settlement reports

const REPORTS = "/admin/reconciliation/acquirer-reports";
const EXCEPTION_KINDS = statusOptions("amount_mismatch", "missing_in_ledger", "missing_in_report");

// The acquirer's daily settlement CSV, sent as multipart/form-data from a file input; the API
// streams it, and importing the same file again changes nothing.
function reportUploadCard() {
  const errors = h("div", {});
  const submit = h("button", { type: "submit" }, t("Unggah"));
  const form = h("form", { class: "upload", id: "upload-report" },
    h("label", {}, t("Laporan settlement acquirer (CSV)"), h("input", { type: "file", name: "file", accept: ".csv,text/csv", required: true })), submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    try {
      const report = await api("POST", REPORTS, new FormData(form));
      location.assign(pageUrl("admin-acquirer-report-detail", { id: report.id, imported: report.already_imported ? "again" : null }));
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 401)) errors.replaceChildren(errorBox(error));
      submit.disabled = false;
    }
  });
  return card("Unggah laporan", h("p", { class: "muted" }, t("Kolom CSV: provider_reference, amount, settlement_date (wajib); fee, terminal_id, merchant_nmid (pilihan).")), errors, form);
}

const settlementDates = (r) => r.settlement_date_from + (r.settlement_date_to !== r.settlement_date_from ? " – " + r.settlement_date_to : "");

async function acquirerReportsPage() {
  show(may("settlement:write") ? reportUploadCard() : null, await listView({
    path: REPORTS,
    filters: [{ name: "from", label: "Dari", attrs: { type: "date" } }, { name: "to", label: "Sampai", attrs: { type: "date" } }],
    columns: [["Diimpor", (r) => time(r.created_at)], ["Berkas", (r) => link("admin-acquirer-report-detail", { id: r.id }, r.file_name || r.id)],
      ["Tanggal settlement", settlementDates], ["Jumlah baris", (r) => String(r.line_count), "num"], ["Cocok", (r) => String(r.matched_count), "num"],
      ["Selisih jumlah", (r) => String(r.amount_mismatch_count), "num"], ["Tidak ada di ledger", (r) => String(r.missing_in_ledger_count), "num"],
      ["Tidak ada di laporan", (r) => String(r.missing_in_report_count), "num"], ["Belum diselesaikan", (r) => String(r.unresolved_count), "num"]],
    rowLink: (r) => pageUrl("admin-acquirer-report-detail", { id: r.id }),
    emptyText: "Belum ada laporan acquirer. Unggah CSV settlement harian dari acquirer.",
  }));
}

async function acquirerReportDetailPage() {
  const params = query();
  const base = REPORTS + "/" + encodeURIComponent(params.get("id"));
  const report = await get(base);
  setTitle(t("Laporan acquirer") + " " + (report.file_name || report.id));
  if (params.get("imported") === "again") notice(t("Berkas ini sudah pernah diimpor: tidak ada yang berubah."));
  // Under each count its amount; for "amount differs" the report's minus the ledger's.
  const kpi = (id, label, count, amount) => h("div", { class: "card kpi", "data-kpi": id }, h("div", { class: "label" }, t(label)),
    h("div", { class: "value" }, String(count)), amount === undefined ? null : h("div", { class: "muted" }, money(amount)));
  const filters = clean({ kind: params.get("kind"), resolved: params.get("resolved"), merchant_id: params.get("merchant_id") });
  const exportButton = may("settlement:export") ? action("Ekspor CSV", () => download(base + "/exceptions/export.csv" +
    (Object.keys(filters).length ? "?" + new URLSearchParams(filters) : ""), `acquirer-report-${report.id}-exceptions.csv`), { class: "secondary", id: "export-exceptions" }) : null;
  const resolve = (e) => action("Selesaikan", () => formDialog("Selesaikan pengecualian", [field("note", "Catatan", { required: true })],
    async (v) => { await post(`${base}/exceptions/${encodeURIComponent(e.id)}/resolve`, { note: v.note }); reloadDone(); }),
  { class: "secondary", "data-resolve": e.id });
  const list = await listView({
    path: base + "/exceptions",
    keep: ["id"],
    filters: [{ name: "kind", label: "Jenis", attrs: { options: EXCEPTION_KINDS } }, { name: "resolved", label: "Diselesaikan", attrs: { options: YES_NO } },
      { name: "merchant_id", label: "ID merchant" }],
    columns: [["Baris", (e) => (e.line_number === null ? "—" : String(e.line_number)), "num"], ["Jenis", (e) => badge(e.kind)],
      ["Referensi provider", (e) => e.provider_reference || "—"],
      ["Menurut laporan", (e) => money(e.report_amount), "num"], ["Menurut ledger", (e) => money(e.ledger_amount), "num"],
      ["Transaksi", (e) => (e.transaction_id ? [link("admin-transaction-detail", { id: e.transaction_id }, e.transaction_id),
        h("div", {}, link("admin-merchant-detail", { id: e.merchant_id }, e.merchant_id))] : "—")],
      ["Status", (e) => (e.resolved_at ? [badge("resolved"), " ", time(e.resolved_at), h("div", { class: "muted", "data-note": "" }, e.resolution_note)]
        : may("settlement:write") ? resolve(e) : badge("open"))]],
    emptyText: "Tidak ada pengecualian: setiap baris laporan cocok dengan ledger.",
  });
  show(h("div", { class: "grid" }, kpi("matched", "Cocok", report.matched_count, report.matched_amount),
    kpi("amount_mismatch", "Selisih jumlah", report.amount_mismatch_count, report.amount_mismatch_report_amount - report.amount_mismatch_ledger_amount),
    kpi("missing_in_ledger", "Tidak ada di ledger", report.missing_in_ledger_count, report.missing_in_ledger_amount),
    kpi("missing_in_report", "Tidak ada di laporan", report.missing_in_report_count, report.missing_in_report_amount),
    kpi("unresolved", "Belum diselesaikan", report.unresolved_count)),
  card("Detail", kv([["ID", report.id], ["Berkas", report.file_name], ["SHA-256", h("code", {}, report.content_sha256)],
    ["Tanggal settlement", report.settlement_dates.join(", ")], ["Jumlah baris", String(report.line_count)], ["Total laporan", money(report.report_amount)],
    ["Biaya laporan", money(report.report_fee)],
    ["Diimpor oleh", report.imported_by_type + " " + (report.imported_by || "")], ["Diimpor", time(report.created_at)]])),
  h("section", { class: "card" }, h("h2", {}, t("Pengecualian")), h("div", { class: "actions" }, exportButton), list));
}

const LOGIN_ACTIONS = ["admin.login.success", "admin.login.failed", "merchant.login.success", "merchant.login.failed"];

async function auditPage() {
  const params = query();
  const panel = h("aside", { class: "side-panel", hidden: true, id: "payload-panel" });
  const search = h("input", { type: "search", id: "search", placeholder: t("Cari di halaman ini"), value: params.get("q") || "" });
  const counts = h("div", { class: "grid" });
  const preset = h("a", { href: pageUrl("admin-system-audit-logs", { preset: "login" }), id: "login-preset" }, t("Preset peristiwa login"));
  const loginPreset = params.get("preset") === "login";
  // The login preset reads the login actions only: the API filters on one action at a time,
  // so it asks for each and merges them newest first.
  let rows = [];
  let nextCursor = null;
  const base = clean({ entity_type: params.get("entity_type"), from: params.get("from"), to: params.get("to"), cursor: params.get("cursor"), limit: 100 });
  if (loginPreset) {
    const pages = await Promise.all(LOGIN_ACTIONS.map((name) => get("/admin/audit-logs", Object.assign({}, base, { action: name, cursor: undefined }))));
    rows = pages.flatMap((p) => p.items).sort((a, b) => (a.id < b.id ? 1 : -1));
  } else {
    const data = await get("/admin/audit-logs", Object.assign({ action: params.get("action") }, base));
    rows = data.items;
    nextCursor = data.next_cursor;
  }
  const ok = rows.filter((r) => r.action.endsWith(".login.success")).length;
  const failed = rows.filter((r) => r.action.endsWith(".login.failed")).length;
  counts.replaceChildren(
    h("div", { class: "card kpi" }, h("div", { class: "label" }, t("Login berhasil")), h("div", { class: "value", "data-kpi": "login-ok" }, String(ok))),
    h("div", { class: "card kpi" }, h("div", { class: "label" }, t("Login gagal")), h("div", { class: "value", "data-kpi": "login-failed" }, String(failed))));
  const body = h("tbody", {});
  const render = () => {
    const needle = search.value.trim().toLowerCase();
    body.replaceChildren(...rows.filter((r) => !needle || JSON.stringify(r).toLowerCase().includes(needle)).map((r) => {
      const row = h("tr", { class: "clickable", "data-id": r.id, "data-action": r.action }, h("td", { "data-label": t("Waktu") }, time(r.occurred_at)), h("td", { "data-label": t("Aksi audit") }, r.action),
        h("td", { "data-label": t("Entitas") }, (r.entity_type || "—") + " " + (r.entity_id || "")), h("td", { title: r.actor_id || "", "data-label": t("Pelaku") }, (r.actor_email || r.actor_type + " " + (r.actor_id || "")) + (r.actor_role ? " (" + r.actor_role + ")" : "")),
        h("td", { "data-label": "IP" }, r.ip || "—"));
      row.addEventListener("click", () => {
        panel.hidden = false;
        panel.replaceChildren(h("button", { type: "button", class: "secondary", onclick: () => { panel.hidden = true; } }, t("Tutup")),
          h("h2", {}, t("Payload JSON")), kv([["ID", r.id], ["Aksi audit", r.action], ["id permintaan", r.request_id]]), h("pre", { id: "payload-json" }, JSON.stringify(r.payload, null, 2)));
      });
      return row;
    }));
  };
  search.addEventListener("input", render);
  render();
  const filterForm = h("form", { class: "filters" }, field("action", "Aksi audit", { value: params.get("action") || "", placeholder: "admin.login.failed" }),
    field("entity_type", "Entitas", { value: params.get("entity_type") || "" }), field("from", "Dari", { value: params.get("from") || "", type: "date" }),
    field("to", "Sampai", { value: params.get("to") || "", type: "date" }), h("button", { type: "submit" }, t("Filter")), h("a", { href: location.pathname }, t("Hapus filter")), preset);
  filterForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const values = clean(formValues(filterForm));
    location.assign(location.pathname + (Object.keys(values).length ? "?" + new URLSearchParams(values) : ""));
  });
  const next = new URLSearchParams(params);
  next.set("cursor", nextCursor || "");
  show(filterForm, counts, h("label", {}, t("Cari di halaman ini"), search),
    rows.length ? h("table", { "data-list": "audit" }, h("thead", {}, h("tr", {}, ["Waktu", "Aksi audit", "Entitas", "Pelaku", "IP"].map((c) => h("th", {}, t(c))))), body)
      : empty("Tidak ada data untuk filter ini.", "Ubah atau hapus filter, atau tunggu data baru."),
    nextCursor ? h("div", { class: "pager" }, h("a", { href: "?" + next }, t("Berikutnya"))) : null, panel);
}

async function observabilityPage() {
  const holder = h("div", {});
  const stamp = poll(async () => {
    const o = await get("/admin/observability/summary");
    holder.replaceChildren(
      h("div", { class: "grid" }, Object.entries(o.outbox).map(([status, count]) => h("div", { class: "card kpi" }, h("div", { class: "label" }, "outbox " + statusLabel(status)),
        h("div", { class: "value" }, String(count))))),
      card("Transaksi satu jam terakhir", simpleTable(Object.entries(o.transactions_last_hour).map(([status, v]) => ({ id: status, status, ...v })),
        [["Status", (r) => badge(r.status)], ["Count", (r) => String(r.count)], ["Jumlah", (r) => money(r.amount)]], "last-hour")),
      card("Proses", simpleTable(o.runtime_instances, [["ID", (r) => r.id], ["Host", (r) => r.hostname + ":" + r.pid], ["Roles", (r) => r.roles.join(", ")],
        ["Status", (r) => badge(r.alive ? "online" : "offline")], ["Terakhir terlihat", (r) => time(r.last_seen_at)]], "instances")),
      card("Pekerja ekspor", h("pre", {}, JSON.stringify(o.export_jobs, null, 2))),
      card("Legacy device token", h("pre", {}, JSON.stringify(o.legacy_device_token, null, 2))));
  });
  show(stamp, holder);
}

// ---------------------------------------------------------------- search

// The top bar's one search box: the same `q` on each list the role may read, side by side.
async function searchPage() {
  const q = (query().get("q") || "").trim();
  const box = h("form", { class: "filters", method: "get" }, field("q", "Cari", { type: "search", value: q, id: "search-q",
    placeholder: t("Merchant, NMID, kode terminal, serial, referensi, RRN, jumlah") }), h("button", { type: "submit" }, t("Cari")));
  if (!q) {
    show(box, empty("Ketik nama merchant, kode atau NMID, kode terminal, nomor seri perangkat, referensi, RRN atau jumlah."));
    return;
  }
  const part = (permission, path, columns, name) => (may(permission) ? get(path, { q, limit: 10 }).then((data) => [name, columns, data.items]) : null);
  const sections = (await Promise.all([
    part("merchant:read", "/admin/merchants", [["Nama", (m) => link("admin-merchant-detail", { id: m.id }, m.name)], ["Kode", (m) => m.code],
      ["NMID", (m) => m.nmid || "—"], ["Status", (m) => badge(m.status)]], "Merchant"),
    part("terminal:read", "/admin/terminals", [["Terminal", (x) => link("admin-merchant-detail", { id: x.merchant_id }, x.terminal_code + " · " + x.name)],
      ["Perangkat", (x) => (x.bound_device ? link("admin-device-detail", { id: x.bound_device.id }, x.bound_device.serial_number) : "—")], ["Status", (x) => badge(x.status)]], "Terminal"),
    part("device:read", "/admin/devices", [["Serial", (d) => link("admin-device-detail", { id: d.id }, d.serial_number)], ["Terminal", terminalLabel],
      ["Merchant", (d) => d.merchant_name || "—"], ["Online", (d) => badge(d.online ? "online" : "offline")]], "Perangkat"),
    part("transaction:read", "/admin/transactions", [["Dibuat", (x) => time(x.created_at)], ["Referensi", (x) => link("admin-transaction-detail", { id: x.id }, x.reference)],
      ["Jumlah", (x) => money(x.amount)], ["Status", (x) => badge(x.status)], ["Merchant", (x) => x.merchant_name]], "Transaksi"),
  ])).filter(Boolean);
  const found = sections.filter(([, , items]) => items.length);
  show(box, found.length ? found.map(([name, columns, items]) => h("section", { class: "card", "data-results": name }, h("h2", {}, t(name)), simpleTable(items, columns, "search-" + name)))
    : empty("Tidak ada yang cocok.", "Nama boleh sebagian; kode, NMID, referensi dan RRN harus lengkap."));
}

// ---------------------------------------------------------------- pages: merchant

// "Hari ini": the merchant's landing page. Today's total and count and the newest payments, by
// short poll (docs/console.md "Live pages" says why not server-sent events).
const TODAY_POLL_MS = 2000;
// The Jakarta day, as the date filters send it (apiParams turns the day into its bounds).
const todayFrom = () => new Intl.DateTimeFormat("en-CA", { timeZone: TIME_ZONE }).format(new Date());
async function merchantTodayPage() {
  const kpis = h("div", { class: "grid", id: "today" });
  const rows = h("div", {});
  const stamp = h("div", { class: "muted", id: "refreshed" });
  const render = async () => {
    const [today, paid] = await Promise.all([get("/merchant/today"), get("/merchant/transactions", { status: "paid", limit: 20, from: todayFrom() })]);
    const kpi = (id, label, value) => h("div", { class: "card kpi", "data-kpi": id }, h("div", { class: "label" }, t(label)), h("div", { class: "value" }, value));
    kpis.replaceChildren(kpi("paid_volume", "Nilai dibayar hari ini", money(today.paid_volume)),
      kpi("paid_count", "Dibayar hari ini", String(today.paid_count)));
    rows.replaceChildren(card("Pembayaran terbaru", paid.items.length ? simpleTable(paid.items, [["Dibayar", (x) => time(x.paid_at)],
      ["Jumlah", (x) => h("strong", {}, money(x.amount))], ["Terminal", terminalLabel], ["Referensi", (x) => x.reference]], "today-payments")
      : empty("Belum ada pembayaran hari ini.", "Pembayaran muncul di sini beberapa detik setelah pelanggan membayar QRIS.")));
    stamp.replaceChildren(t("Diperbarui otomatis setiap"), " " + TODAY_POLL_MS / 1000 + " ", t("detik"), " · ", t("Terakhir diperbarui"), " ", time(new Date().toISOString()));
  };
  const run = async () => {
    try { await render(); } catch (error) { if (!(error instanceof ApiError && error.status === 401)) flash(errorBox(error)); }
    setTimeout(run, TODAY_POLL_MS);
  };
  show(stamp, kpis, rows, h("p", {}, link("merchant-transactions", {}, t("Semua transaksi")), " · ", link("merchant-profile", {}, t("QRIS untuk dicetak"))));
  firstRenders.push(run());
}

async function merchantProfilePage() {
  const profile = await get("/merchant/profile");
  const m = profile.merchant;
  const terminals = await get("/merchant/terminals", { limit: 200 });
  show(card("Profil", kv([["Nama", m.name], ["Kode", m.code], ["Status", badge(m.status)], ["Kota", m.city], ["NMID", m.nmid], ["Email", m.email]])),
    card("Pengguna", kv([["Email", profile.user.email], ["Peran", profile.user.role], ["Terakhir login", time(profile.user.last_login_at)]])),
    h("section", { class: "card", id: "payout-account" }, h("h2", {}, t("Rekening pencairan")),
      profile.payout_account ? accountView(profile.payout_account) : empty("Belum ada rekening pencairan.", "Hubungi tim keuangan platform untuk mengaturnya.")),
    card("Terminal", terminals.items.length ? h("div", { class: "grid" }, terminals.items.map((x) => terminalCard(x, "merchant")))
      : empty("Tidak ada terminal.")));
}

async function merchantSummaryPage() {
  const s = await get("/merchant/settlement-summary");
  const kpi = (label, value) => h("div", { class: "card kpi" }, h("div", { class: "label" }, t(label)), h("div", { class: "value" }, value));
  show(h("div", { class: "grid" }, kpi("Transaksi hari ini", String(s.today.transaction_count)), kpi("Nilai dibayar hari ini", money(s.today.paid_volume)),
    kpi("Payout tertunda", money(s.pending_payout_amount)), kpi("Payout dibayar", money(s.paid_payout_amount)),
    kpi("Penyesuaian", money(s.settlement_adjustment_amount)), kpi("Belum di-batch", money(s.unbatched_payable_amount))),
  card("Batch terbaru", s.latest_batches.length ? batchTable(s.latest_batches, "merchant") : empty("Belum ada batch. Batch dibuat oleh tim keuangan dari pembayaran yang belum di-batch.")));
}

async function merchantBatchesPage() {
  show(await listView({
    path: "/merchant/settlement-batches",
    filters: [{ name: "status", label: "Status", attrs: { options: BATCH_STATUSES } }],
    columns: batchColumns("merchant-settlement-batch-detail"),
    rowLink: (b) => pageUrl("merchant-settlement-batch-detail", { id: b.id }),
    emptyText: "Belum ada batch. Batch dibuat oleh tim keuangan dari pembayaran yang belum di-batch.",
  }));
}

async function merchantBatchDetailPage() {
  const base = "/merchant/settlement-batches/" + encodeURIComponent(query().get("id"));
  const batch = await get(base);
  setTitle(t("Batch") + " " + batch.id);
  show(batchDetail(batch, may("settlement:export") ? base + "/export.csv" : null));
}

async function merchantTransactionsPage() {
  show(await listView({
    path: "/merchant/transactions",
    filters: [{ name: "status", label: "Status", attrs: { options: TX_STATUSES } }, { name: "terminal_id", label: "ID terminal" },
      { name: "from", label: "Dari", attrs: { type: "date" } }, { name: "to", label: "Sampai", attrs: { type: "date" } }],
    columns: transactionColumns("merchant"),
    emptyText: "Belum ada transaksi. Transaksi muncul saat pelanggan membayar QRIS.",
  }));
}

// ---------------------------------------------------------------- partners (docs/partners.md)

// The registry with its create form; with ?id=, that partner's notifications and a resend for each.
async function partnersPage() {
  const secretBox = h("div", { id: "partner-secret" });
  const create = action("Partner baru", () => formDialog("Partner baru", [
    field("name", "Nama", { required: true }), field("client_key", "Kunci klien", { required: true }),
    h("label", {}, t("Kunci publik RSA (PEM)"), h("textarea", { name: "public_key_pem", rows: 6, required: true })),
    field("notify_url", "URL notifikasi", { required: true, type: "url" }), field("merchant_ids", "ID merchant (dipisah koma)")],
  async (values) => {
    const merchantIds = (values.merchant_ids || "").split(",").map((id) => id.trim()).filter(Boolean);
    const partner = await post("/admin/partners", Object.assign({}, values, { merchant_ids: merchantIds }));
    secretBox.replaceChildren(card("Rahasia klien (hanya ditampilkan sekali)", h("code", { "data-secret": partner.client_secret }, partner.client_secret)));
  }), { id: "new-partner" });
  const partners = await get("/admin/partners", { limit: 200 });
  const id = query().get("id");
  let deliveries = null;
  if (id) {
    const log = await get(`/admin/partners/${encodeURIComponent(id)}/deliveries`);
    deliveries = card("Pengiriman notifikasi", log.notifications.length ? simpleTable(log.notifications, [
      ["Dibuat", (n) => time(n.created_at)], ["Transaksi", (n) => n.transaction_id], ["Status", (n) => badge(n.status)],
      ["Percobaan", (n) => String(n.attempts)], ["", (n) => n.last_error || ""],
      ["", (n) => action("Kirim ulang", async () => { await post(`/admin/partners/${encodeURIComponent(id)}/notifications/${n.id}/resend`); location.reload(); })]], "partner-notifications")
      : empty("Belum ada notifikasi."));
  }
  show(h("div", { class: "actions" }, create), secretBox, card("Partner", partners.items.length ? simpleTable(partners.items, [
    ["Nama", (p) => link("admin-partners", { id: p.id }, p.name)], ["Kunci klien", (p) => p.client_key], ["Status", (p) => badge(p.status)],
    ["URL notifikasi", (p) => p.notify_url], ["Merchant", (p) => p.merchant_ids.join(", ") || "—"]], "partners") : empty("Belum ada partner.")), deliveries);
}

// ---------------------------------------------------------------- acquirers (docs/acquirers.md)

// The registry: its list, a create form, an edit form per acquirer, and the ids merchants and
// terminals carry at their acquirer. Secrets are write-only: the API answers them as "********",
// the forms send one only when typed (an empty secret field leaves it unchanged).
const ACQUIRER_SHOWN = [["client_key", "Kunci klien"], ["client_id", "Client id"], ["base_url", "URL API acquirer", "url"], ["channel_id", "ID kanal"]];
const ACQUIRER_SECRETS = [["client_secret", "Client secret"], ["server_key", "Server key"], ["callback_token", "Callback token"], ["secret_key", "Secret key"]];

function acquirerFields(current) {
  const settings = (current && current.settings) || {};
  const secretField = ([name, label]) => field(name, label, { type: "password", autocomplete: "new-password",
    "data-secret-field": name, placeholder: settings[name] ? t("Kosong: tidak berubah") : "" });
  return [
    ...ACQUIRER_SHOWN.map(([name, label, type]) => field(name, label, { value: settings[name] || "", type: type || "text" })),
    field("notify_signature", "Tanda tangan notifikasi", { options: [["", "—"], ["symmetric", "symmetric"], ["asymmetric", "asymmetric"]], value: settings.notify_signature || "" }),
    h("label", {}, t("Kunci publik RSA (PEM)"), h("textarea", { name: "public_key_pem", rows: 5 }, settings.public_key_pem || "")),
    h("fieldset", {}, h("legend", {}, t("Rahasia (hanya ditulis, tidak pernah ditampilkan)")), ...ACQUIRER_SECRETS.map(secretField),
      h("label", {}, t("Kunci privat platform (PEM)"), h("textarea", { name: "private_key_pem", rows: 4, "data-secret-field": "private_key_pem",
        placeholder: settings.private_key_pem ? t("Kosong: tidak berubah") : "" }))),
  ];
}

// The settings a form changed: the filled shown fields that differ, every typed secret.
function acquirerSettings(values, current) {
  const before = (current && current.settings) || {};
  const settings = {};
  for (const name of [...ACQUIRER_SHOWN.map(([n]) => n), "notify_signature", "public_key_pem"]) {
    if (values[name] && values[name] !== String(before[name] || "").trim()) settings[name] = values[name];
  }
  for (const name of [...ACQUIRER_SECRETS.map(([n]) => n), "private_key_pem"]) if (values[name]) settings[name] = values[name];
  return settings;
}

async function acquirersPage() {
  const protocols = ["snap", "midtrans", "xendit", "doku", "platform"].map((p) => [p, p]);
  const create = action("Acquirer baru", () => formDialog("Acquirer baru", [
    field("code", "Kode", { required: true, pattern: "[a-z0-9][a-z0-9_\\-]{0,31}" }), field("name", "Nama", { required: true }),
    field("protocol", "Protokol", { options: protocols, value: "snap" }), ...acquirerFields(null)],
  async (values) => {
    await post("/admin/acquirers", { code: values.code, name: values.name, protocol: values.protocol, settings: acquirerSettings(values, null) });
    location.reload();
  }), { id: "new-acquirer" });
  const edit = (acquirer) => action("Ubah", () => formDialog("Ubah acquirer", [field("name", "Nama", { required: true, value: acquirer.name }), ...acquirerFields(acquirer)],
    async (values) => {
      const body = { settings: acquirerSettings(values, acquirer) };
      if (values.name !== acquirer.name) body.name = values.name;
      await api("PATCH", `/admin/acquirers/${encodeURIComponent(acquirer.code)}`, body);
      location.reload();
    }), { "data-edit": acquirer.code });
  const acquirers = await get("/admin/acquirers", { limit: 200 });
  const secretsSet = (a) => Object.keys(a.settings).filter((k) => a.settings[k] === "********").join(", ") || "—";
  const list = card("Acquirer", acquirers.items.length ? simpleTable(acquirers.items, [
    ["Kode", (a) => h("code", {}, a.code)], ["Nama", (a) => a.name], ["Protokol", (a) => badge(a.protocol)],
    ["Kunci klien", (a) => a.settings.client_key || "—"], ["URL API acquirer", (a) => a.settings.base_url || "—"],
    ["Rahasia tersimpan", secretsSet], ["", edit]], "acquirers") : empty("Belum ada acquirer."));
  const saved = h("p", { class: "muted", id: "ids-saved" });
  const merchantPicker = searchableSelect({ name: "merchant_id", label: "Merchant", path: "/admin/merchants", render: (m) => m.name });
  const merchantForm = h("form", { class: "dialog-form", id: "merchant-acquirer" }, merchantPicker,
    field("acquirer_code", "Acquirer", { options: [["", "—"], ...acquirers.items.map((a) => [a.code, a.code])] }),
    field("acquirer_merchant_id", "ID merchant di acquirer"), h("button", { type: "submit" }, t("Simpan ID merchant")));
  merchantForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const v = formValues(merchantForm);
    try {
      await put(`/admin/merchants/${encodeURIComponent(v.merchant_id)}/acquirer`, { acquirer_code: v.acquirer_code || null, acquirer_merchant_id: v.acquirer_merchant_id || null });
      saved.textContent = t("Tersimpan");
    } catch (error) { flash(errorBox(error)); }
  });
  const terminalForm = h("form", { class: "dialog-form", id: "terminal-acquirer" },
    field("terminal_id", "ID terminal", { required: true }), field("acquirer_terminal_id", "ID terminal di acquirer"),
    h("button", { type: "submit" }, t("Simpan ID terminal")));
  terminalForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const v = formValues(terminalForm);
    try {
      await put(`/admin/terminals/${encodeURIComponent(v.terminal_id)}/acquirer-id`, { acquirer_terminal_id: v.acquirer_terminal_id || null });
      saved.textContent = t("Tersimpan");
    } catch (error) { flash(errorBox(error)); }
  });
  show(h("div", { class: "actions" }, create), list, card("ID di acquirer", merchantForm, terminalForm, saved));
  await merchantPicker.ready;
}

// ---------------------------------------------------------------- users (admin and merchant)

const ROLE_LABEL = {
  admin: ["admin", "admin"], finance: ["keuangan", "finance"], ops: ["operasional", "operations"], support: ["dukungan", "support"],
  viewer: ["pemantau", "viewer"], owner: ["pemilik", "owner"],
};
const roleLabel = (role) => (ROLE_LABEL[role] ? ROLE_LABEL[role][lang === "en" ? 1 : 0] : role);
const roleOptions = (kind) => Object.keys(ROLE_PERMISSIONS[kind] || {}).map((role) => [role, roleLabel(role)]);

// Both kinds of users on one page (`kind=admin|merchant`); a merchant's users from its detail page.
async function usersPage() {
  const kind = query().get("kind") === "merchant" ? "merchant" : "admin";
  const base = `/admin/${kind}-users`;
  const writable = may("user:write");
  const self = session();
  const handOver = (issued, message) => oneTimeSecret("Kata sandi sementara", issued.temporary_password, (secret) => [
    ["Email", h("code", { id: "user-email" }, issued.user.email)], ["Kata sandi", secret],
    ["Masuk di", h("code", {}, location.origin + "/ui/" + kind + "-login")]], message);
  const invite = writable ? action(kind === "admin" ? "Undang admin" : "Undang pengguna merchant", () => formDialog(
    kind === "admin" ? "Undang admin" : "Undang pengguna merchant",
    [kind === "merchant" ? merchantPicker() : null, field("email", "Email", { type: "email", required: true }), field("name", "Nama", { required: true }),
      field("role", "Peran", { options: roleOptions(kind) })].filter(Boolean),
    async (v) => handOver(await post(base, clean(v)), "Pengguna diundang.")), { id: "invite-user" }) : null;
  const actions = (u) => {
    if (!writable || (u.kind === self.kind && u.id === self.user_id)) return "—";
    const where = `${base}/${encodeURIComponent(u.id)}`;
    return h("div", { class: "actions" },
      action("Ubah peran", () => formDialog("Ubah peran", [h("p", {}, u.email), field("role", "Peran", { options: roleOptions(kind), value: u.role })],
        async (v) => { await api("PATCH", where, { role: v.role }); reloadDone("Peran diubah."); }), { class: "secondary", "data-role-user": u.id }),
      u.status === "active"
        ? action("Nonaktifkan", async () => {
          if (!(await confirmed("Nonaktifkan pengguna?", "Semua sesi pengguna ini berakhir dan ia tidak bisa masuk lagi sampai diaktifkan."))) return;
          await api("PATCH", where, { status: "disabled" });
          reloadDone("Pengguna dinonaktifkan.");
        }, { class: "secondary", "data-disable-user": u.id })
        : action("Aktifkan", async () => { await api("PATCH", where, { status: "active" }); reloadDone("Pengguna diaktifkan."); },
          { class: "secondary", "data-enable-user": u.id }),
      action("Atur ulang kata sandi", async () => {
        if (!(await confirmed("Atur ulang kata sandi?", "Kata sandi lama tidak berlaku lagi dan semua sesi pengguna ini berakhir."))) return;
        handOver(await post(`${where}/reset-password`), "Kata sandi diatur ulang.");
      }, { class: "secondary", "data-reset-user": u.id }));
  };
  const list = await listView({
    path: base,
    keep: ["kind"],
    filters: [{ name: "q", label: "Email atau nama", attrs: { type: "search" } },
      { name: "role", label: "Peran", attrs: { options: [["", "Semua"], ...roleOptions(kind)] } },
      { name: "status", label: "Status", attrs: { options: statusOptions("active", "disabled") } },
      ...(kind === "merchant" ? [{ name: "merchant_id", hidden: true }] : [])],
    columns: [["Nama", (u) => u.name], ["Email", (u) => u.email], ...(kind === "merchant" ? [["Merchant", merchantLink]] : []),
      ["Peran", (u) => roleLabel(u.role)], ["Status", (u) => badge(u.status)], ["Login terakhir", (u) => time(u.last_login_at)], ["", actions]],
    emptyText: kind === "admin" ? "Belum ada pengguna admin." : "Belum ada pengguna merchant. Undang pemilik atau kasir merchant.",
  });
  const tab = (which, label) => h("a", { href: pageUrl("admin-users", { kind: which }), class: which === kind ? "current" : null, "data-kind": which }, t(label));
  show(h("nav", { class: "tabs" }, tab("admin", "Pengguna admin"), " · ", tab("merchant", "Pengguna merchant")), h("div", { class: "actions" }, invite), list);
}

// ---------------------------------------------------------------- start

const PAGES = {
  "admin-search": searchPage, "merchant-today": merchantTodayPage,
  "admin-terminal-poster": posterPage, "merchant-terminal-poster": posterPage,
  "admin-dashboard-overview": dashboardPage, "admin-merchants": merchantsPage, "admin-merchant-detail": merchantDetailPage,
  "admin-device-registry": deviceRegistryPage, "admin-device-detail": deviceDetailPage, "admin-transactions": transactionsPage,
  "admin-transaction-detail": transactionDetailPage, "admin-settlement-batches": batchesPage, "admin-settlement-batch-detail": batchDetailPage,
  "admin-reconciliation-management": reconciliationPage, "admin-acquirer-reports": acquirerReportsPage,
  "admin-acquirer-report-detail": acquirerReportDetailPage, "admin-system-audit-logs": auditPage, "admin-observability": observabilityPage,
  "admin-partners": partnersPage, "admin-acquirers": acquirersPage,
  "admin-users": usersPage, "admin-refunds": refundsPage,
  "merchant-profile": merchantProfilePage, "merchant-settlement-summary": merchantSummaryPage, "merchant-settlement-batches": merchantBatchesPage,
  "merchant-settlement-batch-detail": merchantBatchDetailPage, "merchant-transactions": merchantTransactionsPage,
};

async function start() {
  layout();
  if (page === "catalogue" || page === "not-found") {
    ready();
    return;
  }
  if (page === "admin-login" || page === "merchant-login") {
    setTitle(t(page === "admin-login" ? "Masuk admin" : "Masuk merchant"));
    loginPage(audience);
    ready();
    return;
  }
  const current = session();
  if (!current || current.kind !== audience) {
    location.assign(pageUrl(audience + "-login", { next: location.pathname + location.search }));
    return;
  }
  const done = sessionStorage.getItem(NOTICE_KEY);
  if (done) {
    sessionStorage.removeItem(NOTICE_KEY);
    notice(done);
  }
  // A detail page opened without its id (a bookmark cut short): say so, call nothing.
  if ((page.endsWith("-detail") || page.endsWith("-poster")) && !query().get("id")) {
    const list = navSection(page);
    show(empty("Halaman ini menampilkan satu data: bukalah dari daftarnya.", null), h("p", {}, link(list, {}, t("Buka daftar"))));
    ready();
    return;
  }
  show(h("p", { class: "muted" }, t("Memuat…")));
  try {
    await PAGES[page]();
    await Promise.all(firstRenders);
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) show(errorBox(error), h("p", {}, link(NAV[audience][0][0], {}, t("Muat ulang"))));
  }
  ready();
}

// The page's first content is on screen: tests wait for this attribute, the bench reads the mark.
function ready() {
  document.body.dataset.ready = "1";
  performance.mark("console-ready");
}

start();
