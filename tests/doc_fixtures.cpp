// SPDX-License-Identifier: GPL-3.0-or-later
#include "tests/doc_fixtures.hpp"

#include <fmt/format.h>
#include <zlib.h>

#include <stdexcept>

namespace maildsar::test {

namespace {

std::string pdf_escape(const std::string &s) {
  std::string out;
  for (char c : s) {
    if (c == '(' || c == ')' || c == '\\') {
      out.push_back('\\');
    }
    out.push_back(c);
  }
  return out;
}

void put16(std::string &out, std::uint32_t v) {
  out.push_back(static_cast<char>(v & 0xFF));
  out.push_back(static_cast<char>((v >> 8) & 0xFF));
}
void put32(std::string &out, std::uint32_t v) {
  put16(out, v & 0xFFFF);
  put16(out, v >> 16);
}

std::string raw_deflate(const std::string &data) {
  z_stream z{};
  if (deflateInit2(&z, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY) != Z_OK) {
    throw std::runtime_error("deflateInit2");
  }
  std::string out(deflateBound(&z, static_cast<uLong>(data.size())), '\0');
  z.next_in = reinterpret_cast<Bytef *>(const_cast<char *>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef *>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
    deflateEnd(&z);
    throw std::runtime_error("deflate");
  }
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

std::string base64(const std::string &in) {
  static constexpr char k[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t line = 0;
  for (std::size_t i = 0; i < in.size(); i += 3) {
    std::uint32_t v = static_cast<std::uint32_t>(static_cast<unsigned char>(in[i])) << 16;
    if (i + 1 < in.size()) {
      v |= static_cast<std::uint32_t>(static_cast<unsigned char>(in[i + 1])) << 8;
    }
    if (i + 2 < in.size()) {
      v |= static_cast<unsigned char>(in[i + 2]);
    }
    out.push_back(k[(v >> 18) & 63]);
    out.push_back(k[(v >> 12) & 63]);
    out.push_back(i + 1 < in.size() ? k[(v >> 6) & 63] : '=');
    out.push_back(i + 2 < in.size() ? k[v & 63] : '=');
    if ((line += 4) >= 76) {
      out += "\r\n";
      line = 0;
    }
  }
  out += "\r\n";
  return out;
}

} // namespace

std::string make_pdf(const std::vector<std::vector<std::string>> &pages, const std::string &author) {
  std::vector<std::string> objects; // object i+1
  objects.emplace_back("<< /Type /Catalog /Pages 2 0 R >>");
  objects.emplace_back(); // pages, filled below
  objects.emplace_back("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>");
  std::string kids;
  for (const auto &lines : pages) {
    std::string content = "BT /F1 12 Tf 72 720 Td 14 TL\n";
    for (const std::string &line : lines) {
      content += "(" + pdf_escape(line) + ") Tj T*\n";
    }
    content += "ET\n";
    const std::size_t page_obj = objects.size() + 1;
    objects.push_back(fmt::format("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << "
                                  "/F1 3 0 R >> >> /Contents {} 0 R >>",
                                  page_obj + 1));
    objects.push_back(fmt::format("<< /Length {} >>\nstream\n{}endstream", content.size(), content));
    kids += fmt::format("{} 0 R ", page_obj);
  }
  objects[1] = fmt::format("<< /Type /Pages /Kids [{}] /Count {} >>", kids, pages.size());
  std::string info_ref;
  if (!author.empty()) {
    objects.push_back("<< /Author (" + pdf_escape(author) + ") >>");
    info_ref = fmt::format(" /Info {} 0 R", objects.size());
  }
  std::string out = "%PDF-1.4\n%\xE2\xE3\xCF\xD3\n";
  std::vector<std::size_t> offsets;
  for (std::size_t i = 0; i < objects.size(); ++i) {
    offsets.push_back(out.size());
    out += fmt::format("{} 0 obj\n{}\nendobj\n", i + 1, objects[i]);
  }
  const std::size_t xref = out.size();
  out += fmt::format("xref\n0 {}\n0000000000 65535 f \n", objects.size() + 1);
  for (std::size_t off : offsets) {
    out += fmt::format("{:010} 00000 n \n", off);
  }
  out += fmt::format("trailer\n<< /Size {} /Root 1 0 R{} >>\nstartxref\n{}\n%%EOF\n", objects.size() + 1, info_ref,
                     xref);
  return out;
}

std::string make_zip(const std::vector<ZipMember> &members) {
  std::string out;
  std::string central;
  for (const ZipMember &m : members) {
    const auto crc = static_cast<std::uint32_t>(
        crc32(0L, reinterpret_cast<const Bytef *>(m.data.data()), static_cast<uInt>(m.data.size())));
    const std::string body = m.deflate ? raw_deflate(m.data) : m.data;
    const auto offset = static_cast<std::uint32_t>(out.size());
    const std::uint16_t method = m.deflate ? 8 : 0;
    out += "PK\x03\x04";
    put16(out, 20);
    put16(out, 0);
    put16(out, method);
    put16(out, 0);
    put16(out, 0x21);
    put32(out, crc);
    put32(out, static_cast<std::uint32_t>(body.size()));
    put32(out, static_cast<std::uint32_t>(m.data.size()));
    put16(out, static_cast<std::uint32_t>(m.name.size()));
    put16(out, 0);
    out += m.name;
    out += body;
    central += "PK\x01\x02";
    put16(central, 20);
    put16(central, 20);
    put16(central, 0);
    put16(central, method);
    put16(central, 0);
    put16(central, 0x21);
    put32(central, crc);
    put32(central, static_cast<std::uint32_t>(body.size()));
    put32(central, static_cast<std::uint32_t>(m.data.size()));
    put16(central, static_cast<std::uint32_t>(m.name.size()));
    put16(central, 0);
    put16(central, 0);
    put16(central, 0);
    put16(central, 0);
    put32(central, 0);
    put32(central, offset);
    central += m.name;
  }
  const auto central_offset = static_cast<std::uint32_t>(out.size());
  out += central;
  out += "PK\x05\x06";
  put16(out, 0);
  put16(out, 0);
  put16(out, static_cast<std::uint32_t>(members.size()));
  put16(out, static_cast<std::uint32_t>(members.size()));
  put32(out, static_cast<std::uint32_t>(central.size()));
  put32(out, central_offset);
  put16(out, 0);
  return out;
}

std::string make_docx(const std::vector<std::string> &paragraphs, const std::string &creator) {
  std::string body;
  for (const std::string &p : paragraphs) {
    const std::size_t half = p.size() / 2;
    body += "<w:p><w:r><w:t xml:space=\"preserve\">" + p.substr(0, half) + "</w:t></w:r><w:r><w:t>" +
            p.substr(half) + "</w:t></w:r></w:p>";
  }
  std::vector<ZipMember> members{
      {"[Content_Types].xml",
       "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Types "
       "xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\"><Default Extension=\"xml\" "
       "ContentType=\"application/xml\"/><Override PartName=\"/word/document.xml\" "
       "ContentType=\"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml\"/></Types>"},
      {"word/document.xml",
       "<?xml version=\"1.0\" encoding=\"UTF-8\"?><w:document "
       "xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\"><w:body>" +
           body + "</w:body></w:document>"}};
  if (!creator.empty()) {
    members.push_back({"docProps/core.xml",
                       "<?xml version=\"1.0\"?><cp:coreProperties "
                       "xmlns:cp=\"http://schemas.openxmlformats.org/package/2006/metadata/core-properties\" "
                       "xmlns:dc=\"http://purl.org/dc/elements/1.1/\"><dc:creator>" +
                           creator + "</dc:creator></cp:coreProperties>"});
  }
  return make_zip(members);
}

namespace {

/** One TNEF attribute: level, id, length, data, checksum (the sum of the data bytes, 16 bits). */
void tnef_attribute(std::string &out, std::uint8_t level, std::uint32_t id, const std::string &data) {
  out.push_back(static_cast<char>(level));
  put32(out, id);
  put32(out, static_cast<std::uint32_t>(data.size()));
  out += data;
  std::uint32_t sum = 0;
  for (const char c : data) {
    sum += static_cast<unsigned char>(c);
  }
  put16(out, sum & 0xFFFFU);
}

/** UTF-8 (ASCII and Latin-1 range) to NUL-terminated UTF-16LE. */
std::string utf16le_z(const std::string &utf8) {
  std::string out;
  for (std::size_t i = 0; i < utf8.size(); ++i) {
    auto c = static_cast<unsigned char>(utf8[i]);
    std::uint32_t cp = c;
    if ((c & 0xE0U) == 0xC0U && i + 1 < utf8.size()) {
      cp = ((c & 0x1FU) << 6U) | (static_cast<unsigned char>(utf8[++i]) & 0x3FU);
    }
    put16(out, cp);
  }
  put16(out, 0);
  return out;
}

/** A variable-length MAPI property value (count 1, size, data, padding to 4 bytes). */
void mapi_value(std::string &out, std::uint16_t type, std::uint16_t id, const std::string &data) {
  put32(out, type | (static_cast<std::uint32_t>(id) << 16U));
  put32(out, 1);
  put32(out, static_cast<std::uint32_t>(data.size()));
  out += data;
  out.append((4 - data.size() % 4) % 4, '\0');
}

} // namespace

std::string make_tnef(const std::string &subject, const std::string &body, const std::string &sender_email,
                      const std::string &display_to, const std::vector<TnefAttachment> &attachments) {
  constexpr std::uint8_t message = 1;
  constexpr std::uint8_t attachment = 2;
  std::string out;
  put32(out, 0x223E9F78U); // signature
  put16(out, 0x4B1D);      // key
  std::string version;
  put32(version, 0x00010000U);
  tnef_attribute(out, message, 0x00089006U, version); // attTnefVersion
  std::string codepage;
  put32(codepage, 1252);
  put32(codepage, 0);
  tnef_attribute(out, message, 0x00069007U, codepage); // attOemCodepage
  tnef_attribute(out, message, 0x00078008U, std::string("IPM.Microsoft Mail.Note") + '\0'); // attMessageClass
  tnef_attribute(out, message, 0x00018004U, subject + '\0');                                // attSubject
  if (!body.empty()) {
    tnef_attribute(out, message, 0x0002800CU, body); // attBody
  }
  std::string props;
  put32(props, 2);
  mapi_value(props, 0x001E, 0x0C1F, sender_email + '\0'); // PR_SENDER_EMAIL_ADDRESS, PT_STRING8
  mapi_value(props, 0x001F, 0x0E04, utf16le_z(display_to)); // PR_DISPLAY_TO, PT_UNICODE
  tnef_attribute(out, message, 0x00069003U, props); // attMAPIProps
  for (const TnefAttachment &a : attachments) {
    std::string rend;
    put16(rend, 1);          // atyp: file
    put32(rend, 0xFFFFFFFFU); // position
    put16(rend, 32);
    put16(rend, 32);
    put32(rend, 0);
    tnef_attribute(out, attachment, 0x00069002U, rend);          // attAttachRenddata: a new attachment
    tnef_attribute(out, attachment, 0x00018010U, a.name + '\0'); // attAttachTitle
    tnef_attribute(out, attachment, 0x0006800FU, a.data);        // attAttachData
    std::string aprops;
    put32(aprops, 1);
    mapi_value(aprops, 0x001F, 0x3707, utf16le_z(a.name)); // PR_ATTACH_LONG_FILENAME
    tnef_attribute(out, attachment, 0x00069005U, aprops);  // attAttachment
  }
  return out;
}

std::string make_odt(const std::vector<std::string> &paragraphs) {
  std::string body;
  for (const std::string &p : paragraphs) {
    body += "<text:p>" + p + "</text:p>";
  }
  return make_zip({{"mimetype", "application/vnd.oasis.opendocument.text", false},
                   {"META-INF/manifest.xml", "<?xml version=\"1.0\"?><manifest:manifest "
                                             "xmlns:manifest=\"urn:oasis:names:tc:opendocument:xmlns:manifest:1.0\"/>"},
                   {"content.xml", "<?xml version=\"1.0\"?><office:document-content "
                                   "xmlns:office=\"urn:oasis:names:tc:opendocument:xmlns:office:1.0\" "
                                   "xmlns:text=\"urn:oasis:names:tc:opendocument:xmlns:text:1.0\"><office:body>"
                                   "<office:text>" +
                                       body + "</office:text></office:body></office:document-content>"}});
}

std::string make_xlsx(const std::vector<std::string> &cells) {
  std::string strings;
  for (const std::string &c : cells) {
    strings += "<si><t>" + c + "</t></si>";
  }
  return make_zip(
      {{"[Content_Types].xml", "<?xml version=\"1.0\"?><Types "
                               "xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\"/>"},
       {"xl/sharedStrings.xml",
        "<?xml version=\"1.0\"?><sst xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\">" +
            strings + "</sst>"}});
}

std::string make_message(const std::string &from, const std::string &to, const std::string &subject,
                         const std::string &message_id, const std::string &body,
                         const std::vector<MimeAttachment> &attachments) {
  const std::string boundary = "=_maildsar_test_boundary";
  std::string out = "From: " + from + "\r\nTo: " + to + "\r\nSubject: " + subject + "\r\nMessage-ID: <" +
                    message_id + ">\r\nDate: Tue, 14 Nov 2023 10:00:00 +0000\r\nMIME-Version: 1.0\r\n";
  out += "Content-Type: multipart/mixed; boundary=\"" + boundary + "\"\r\n\r\n";
  out += "--" + boundary + "\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body + "\r\n";
  for (const MimeAttachment &a : attachments) {
    out += "--" + boundary + "\r\nContent-Type: " + a.mime_type + "; name=\"" + a.name +
           "\"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"" + a.name +
           "\"\r\n\r\n" + base64(a.bytes);
  }
  out += "--" + boundary + "--\r\n";
  return out;
}

} // namespace maildsar::test
