"""The kiosk's words in Vietnamese (the default) and English, always NFC-normalised.

Text typed on a Windows or macOS machine may arrive decomposed (a base
letter plus combining marks); Roboto draws that with misplaced marks, so
everything shown passes through :func:`nfc`.
"""

from __future__ import annotations

import unicodedata

LANGUAGES = ("vi", "en")
DEFAULT_LANGUAGE = "vi"

_TEXTS: dict[str, dict[str, str]] = {
    "invite": {"vi": "Xin ông/bà đánh giá sự phục vụ", "en": "Please rate our service"},
    "on_duty": {"vi": "Cán bộ tiếp nhận", "en": "Officer on duty"},
    "why": {"vi": "Vì sao ông/bà chưa hài lòng?", "en": "Why were you not satisfied?"},
    "choose_any": {"vi": "Chọn một hoặc nhiều lý do", "en": "Choose one or more reasons"},
    "done": {"vi": "Gửi", "en": "Send"},
    "skip": {"vi": "Bỏ qua", "en": "Skip"},
    "delete": {"vi": "Xóa", "en": "Delete"},
    "dossier": {"vi": "Mã hồ sơ hoặc số phiếu (nếu có)", "en": "Dossier or ticket number (if any)"},
    "thanks": {"vi": "Cảm ơn ông/bà!", "en": "Thank you!"},
    # The disk refused the rating (full, failing): it is held in memory, written later.
    "unrecorded": {"vi": "Máy chưa ghi nhận được đánh giá lúc này.",
                   "en": "Your rating cannot be recorded right now."},
    "unrecorded_sub": {"vi": "Xin ông/bà vui lòng báo cán bộ tại quầy.",
                       "en": "Please tell the officer at the desk."},
    "thanks_sub": {"vi": "Ý kiến của ông/bà giúp chúng tôi phục vụ tốt hơn.",
                   "en": "Your opinion helps us serve you better."},
    "closed": {"vi": "Ngoài giờ làm việc", "en": "Outside office hours"},
    "closed_sub": {"vi": "Xin mời quay lại trong giờ hành chính.",
                   "en": "Please come back during office hours."},
    "language": {"vi": "English", "en": "Tiếng Việt"},
    "hotline": {"vi": "Đường dây nóng", "en": "Hotline"},
    "public_phones": {"vi": "Số điện thoại công khai", "en": "Public phone numbers"},
    "notice": {"vi": "Thông báo", "en": "Notice"},
}

#: The follow-up reasons offered when none are configured.
DEFAULT_REASONS: tuple[dict[str, str], ...] = (
    {"key": "waited", "vi": "Chờ quá lâu", "en": "Waited too long"},
    {"key": "attitude", "vi": "Thái độ chưa tốt", "en": "Poor attitude"},
    {"key": "guidance", "vi": "Hướng dẫn chưa rõ", "en": "Unclear guidance"},
    {"key": "papers", "vi": "Yêu cầu bổ sung giấy tờ nhiều lần",
     "en": "Asked for papers again and again"},
)


def nfc(text: str) -> str:
    """``text`` in Unicode normal form C (precomposed Vietnamese letters)."""
    return unicodedata.normalize("NFC", text)


def text(key: str, language: str) -> str:
    """The kiosk's own words for ``key`` in ``language`` (Vietnamese if unknown)."""
    entry = _TEXTS[key]
    return nfc(entry.get(language) or entry[DEFAULT_LANGUAGE])


def pick(item: dict[str, str], language: str) -> str:
    """A configured item's words (``{"vi": ..., "en": ...}``) in ``language``, NFC."""
    return nfc(item.get(language) or item.get(DEFAULT_LANGUAGE) or next(iter(item.values()), ""))
