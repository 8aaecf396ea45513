// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
// Redaction inside MIME messages (issue 18 item 1): a new RFC 5322 message in which the
// identities a Masks says to mask are replaced by placeholders — in address headers (name and
// address, the header kept parseable), in every other header (decoded: RFC 2047, folding), in
// text and HTML parts (decoded from their charset and transfer encoding; HTML parsed with
// libxml2, so entity-written addresses are found and the result stays well-formed), in attachment
// names (RFC 2231), in attached messages; attachments whose extracted text names a masked
// identity are replaced by a short text/plain part saying what was removed and why. DKIM and ARC
// signatures no longer hold: they are removed, and an X-Maildsar-Redacted header says what was
// done. Everything that names nobody masked is left as GMime read it.
//
// One engine for both directions: the access package masks everyone but the subject
// (PersonLabels: "[person 1]", "[person 2]" across the whole package) and erasure masks the
// subject in colleagues' mail (a Masks over the manifest's keyed targets).

#include "core/result.hpp"
#include "indexer/identity.hpp"
#include "redaction/spans.hpp"

#include <cstddef>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace maildsar::redaction {

/** The domain of placeholder addresses (RFC 2606: never delivered, never a person's). */
inline constexpr std::string_view k_placeholder_domain = "redacted.invalid";

/** True for an address of k_placeholder_domain (one of ours: never masked again). */
[[nodiscard]] bool is_placeholder_address(std::string_view email);

/** The address standing for a placeholder label: "[person 1]" -> "person-1@redacted.invalid". */
[[nodiscard]] std::string placeholder_address(std::string_view label);

/** Who is masked, and as what. Identities are normalised (index::Normalizer; names: name_value). */
class Masks {
public:
  virtual ~Masks() = default;
  /**
   * A mailbox of an address header (`name` "" when it has none): the label that stands for it
   * ("[person 1]"), or nullopt to keep it. Called for every mailbox of the message before any
   * text is searched, so that a Masks can learn the names of the people it masks.
   */
  virtual std::optional<std::string> mailbox(const std::string &email, const std::string &name) = 0;
  /** An identifier found in a text (kind "email", "ip", "phone" or "name"): its label, or nullopt. */
  virtual std::optional<std::string> identifier(std::string_view kind, const std::string &normalised) = 0;
  /** The kinds searched for in texts (`wanted` is ignored: identifier() decides). */
  [[nodiscard]] virtual Search kinds() const = 0;
  /** True when every address not kept is masked: then message identifiers (Message-ID,
      References, ...), which look like addresses but name messages, are left alone. */
  [[nodiscard]] virtual bool masks_everyone() const { return false; }
};

/**
 * Masks the identities given (in clear, normalised), each as `label` — the erasure direction in
 * tests and tools; erasure itself compares keyed hashes (erasure/).
 */
class ListedMasks final : public Masks {
public:
  explicit ListedMasks(std::set<std::pair<std::string, std::string>> identities, std::string label = "[redacted]");
  std::optional<std::string> mailbox(const std::string &email, const std::string &name) override;
  std::optional<std::string> identifier(std::string_view kind, const std::string &normalised) override;
  [[nodiscard]] Search kinds() const override;

private:
  std::set<std::pair<std::string, std::string>> m_identities; // (kind, normalised)
  std::string m_label;
};

/**
 * Everyone but the people kept (the data subject, configured exceptions) is masked as
 * "[person N]": one number per e-mail address, the same across every message redacted with this
 * object (an access package), and the names seen with a masked address in a header get its
 * number in texts too. Phone numbers not kept are "[phone N]". Names in texts that no header
 * tied to an address are not recognisable and stay.
 */
class PersonLabels final : public Masks {
public:
  /** `kept`: (kind, normalised) of the people not masked (kinds email, name, phone). */
  explicit PersonLabels(std::set<std::pair<std::string, std::string>> kept);
  std::optional<std::string> mailbox(const std::string &email, const std::string &name) override;
  std::optional<std::string> identifier(std::string_view kind, const std::string &normalised) override;
  [[nodiscard]] Search kinds() const override;
  [[nodiscard]] bool masks_everyone() const override { return true; }
  /**
   * Masks a name wherever a text shows it, as a person of its own unless a header already tied
   * it to an address (the DPO's `--mask NAME`: names in free text are otherwise recognised only
   * through an address field). `name` is a name_value (folded tokens, sorted).
   */
  void mask_name(const std::string &name);
  /** Label -> the e-mail address it stands for (for the DPO's review page, never sent out). */
  [[nodiscard]] const std::map<std::string, std::string> &legend() const { return m_legend; }

private:
  std::string label_of_email(const std::string &email);
  std::set<std::pair<std::string, std::string>> m_kept;
  std::map<std::string, std::string> m_by_email;  // address -> label
  std::map<std::string, std::string> m_by_name;   // name_value -> label
  std::map<std::string, std::string> m_by_phone;  // phone -> label
  std::map<std::string, std::string> m_legend;    // label -> address or phone
  std::size_t m_people = 0;
  std::size_t m_phones = 0;
};

/** How a message is redacted. */
struct MessageOptions {
  /** Extract the text of attachments (connectors::extract_attachments) and withhold those that
      name a masked identity; attachments that cannot be read are withheld too when
      `withhold_unreadable`. Off: every non-text attachment is kept and counted as unchecked. */
  bool check_attachments = true;
  bool withhold_unreadable = true;
  /** The reason written into a withheld attachment's place. */
  std::string withheld_reason = "it names a person whose data is not part of this copy (Art. 15(4) GDPR)";
};

/** What redact_message() did. */
struct MessageReport {
  std::size_t header_replacements = 0; // identities replaced in header fields
  std::size_t text_replacements = 0;   // in text and HTML parts and attachment names
  std::vector<std::string> removed_headers;  // signature fields removed (DKIM-Signature, ARC-*)
  std::vector<std::string> withheld;         // "NAME (TYPE, N bytes): why" per attachment
  std::vector<std::string> unchecked;        // attachments kept without their text checked
  std::set<std::string> labels;              // placeholders used
  /** Where something changed, naming no one: header field names as written ("To",
      "Received"), "text/plain part", "attachment name", "attachment withheld (application/pdf)",
      "MIME preamble"; prefixed "attached message: " inside an attached message. */
  std::set<std::string> places;
  [[nodiscard]] bool changed() const {
    return header_replacements + text_replacements > 0 || !removed_headers.empty() || !withheld.empty();
  }
};

struct RedactedMessage {
  std::string bytes; // the new message (LF line ends); the input itself when nothing changed
  MessageReport report;
};

/**
 * The message `raw` (RFC 5322, as stored) with what `masks` says replaced (see the top of this
 * file). The result is checked before it is returned: decoded again as the indexer decodes mail,
 * it must show none of the masked identities (else ErrorCode::internal: never a copy that only
 * looks redacted). ErrorCode::data when `raw` is not a message or exceeds the item limit.
 * Needs a connectors::mime::MimeLibrary alive; the normaliser's phone module loaded for phones.
 */
[[nodiscard]] core::Result<RedactedMessage> redact_message(std::string_view raw, Masks &masks,
                                                           const index::Normalizer &normalizer,
                                                           const MessageOptions &options = {});

} // namespace maildsar::redaction
