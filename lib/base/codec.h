// One binary encoding for everything the store writes or sends: record values
// on disk and request/response bodies on the local socket.
//
//   unsigned integers, enums   LEB128 varint
//   signed integers            zigzag varint
//   bool                       one byte 0/1
//   string, bytes              varint length + raw bytes
//   vector<T>                  varint count + elements
//   optional<T>                one byte 0/1 + element
//   struct with MAIL_FIELDS    its fields in declaration order
//
// Evolution rule: fields are only ever appended. A decoder that reaches the end
// of its input before a struct's last field leaves the remaining fields at their
// defaults, and ignores trailing bytes it does not know; old and new readers and
// writers interoperate without a version bump.
#pragma once

#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace mail {

// Declares the serialized fields of a struct, in order.
#define MAIL_FIELDS(...)                                            \
  template <class V>                                                \
  void visit_fields(V& v) {                                         \
    v(__VA_ARGS__);                                                 \
  }                                                                 \
  template <class V>                                                \
  void visit_fields(V& v) const {                                   \
    v(__VA_ARGS__);                                                 \
  }

class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}

  void varint(uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }
  void bytes(std::string_view s) {
    varint(s.size());
    out_.append(s);
  }

  template <class... Ts>
  void operator()(const Ts&... vs) {
    (put(vs), ...);
  }

  template <class T>
  void put(const T& v) {
    if constexpr (std::is_same_v<T, bool>) {
      out_.push_back(v ? 1 : 0);
    } else if constexpr (std::is_enum_v<T>) {
      varint(static_cast<uint64_t>(v));
    } else if constexpr (std::is_integral_v<T> && std::is_unsigned_v<T>) {
      varint(v);
    } else if constexpr (std::is_integral_v<T>) {
      int64_t s = v;
      varint((static_cast<uint64_t>(s) << 1) ^ static_cast<uint64_t>(s >> 63));
    } else if constexpr (std::is_same_v<T, std::string>) {
      bytes(v);
    } else {
      put_compound(v);
    }
  }

 private:
  template <class T>
  void put_compound(const std::vector<T>& v) {
    varint(v.size());
    for (const auto& e : v) put(e);
  }
  template <class T>
  void put_compound(const std::optional<T>& v) {
    out_.push_back(v ? 1 : 0);
    if (v) put(*v);
  }
  template <class T>
  void put_compound(const T& v) {
    // A nested struct is length-prefixed so that appended fields can be skipped.
    std::string inner;
    Writer w(inner);
    v.visit_fields(w);
    bytes(inner);
  }

  std::string& out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}

  bool ok() const { return ok_; }
  bool at_end() const { return pos_ >= in_.size(); }
  size_t remaining() const { return in_.size() - pos_; }

  bool varint(uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= in_.size()) return fail();
      auto b = static_cast<uint8_t>(in_[pos_++]);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return true;
    }
    return fail();
  }
  bool bytes(std::string_view& s) {
    uint64_t n;
    if (!varint(n)) return false;
    if (n > remaining()) return fail();
    s = in_.substr(pos_, n);
    pos_ += n;
    return true;
  }

  // Reads fields in order; fields past the end of input keep their defaults.
  template <class... Ts>
  void operator()(Ts&... vs) {
    (get_field(vs), ...);
  }

  template <class T>
  bool get(T& v) {
    if constexpr (std::is_same_v<T, bool>) {
      if (pos_ >= in_.size()) return fail();
      v = in_[pos_++] != 0;
    } else if constexpr (std::is_enum_v<T>) {
      uint64_t n;
      if (!varint(n)) return false;
      v = static_cast<T>(n);
    } else if constexpr (std::is_integral_v<T> && std::is_unsigned_v<T>) {
      uint64_t n;
      if (!varint(n)) return false;
      if constexpr (sizeof(T) < 8) {
        if (n > std::numeric_limits<T>::max()) return fail();
      }
      v = static_cast<T>(n);
    } else if constexpr (std::is_integral_v<T>) {
      uint64_t n;
      if (!varint(n)) return false;
      auto s = static_cast<int64_t>((n >> 1) ^ (~(n & 1) + 1));
      v = static_cast<T>(s);
    } else if constexpr (std::is_same_v<T, std::string>) {
      std::string_view s;
      if (!bytes(s)) return false;
      v.assign(s);
    } else {
      return get_compound(v);
    }
    return true;
  }

 private:
  template <class T>
  void get_field(T& v) {
    if (!ok_ || at_end()) return;  // missing trailing field: keep default
    get(v);
  }
  template <class T>
  bool get_compound(std::vector<T>& v) {
    uint64_t n;
    if (!varint(n)) return false;
    // Every element takes at least one byte: a count beyond the input is a lie.
    if (n > remaining()) return fail();
    v.clear();
    v.reserve(n);
    for (uint64_t i = 0; i < n; ++i) {
      v.emplace_back();
      if (!get(v.back())) return false;
    }
    return true;
  }
  template <class T>
  bool get_compound(std::optional<T>& v) {
    bool has = false;
    if (!get(has)) return false;
    if (!has) {
      v.reset();
      return true;
    }
    v.emplace();
    return get(*v);
  }
  template <class T>
  bool get_compound(T& v) {
    std::string_view inner;
    if (!bytes(inner)) return false;
    Reader r(inner);
    v.visit_fields(r);
    if (!r.ok()) return fail();
    return true;
  }
  bool fail() {
    ok_ = false;
    return false;
  }

  std::string_view in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

// Encodes a struct's fields (without the outer length prefix).
template <class T>
std::string encode(const T& v) {
  std::string out;
  Writer w(out);
  v.visit_fields(w);
  return out;
}

template <class T>
void encode_append(std::string& out, const T& v) {
  Writer w(out);
  v.visit_fields(w);
}

// Decodes a struct; false on malformed input.
template <class T>
bool decode(std::string_view in, T& v) {
  Reader r(in);
  v.visit_fields(r);
  return r.ok();
}

// Fixed-width big-endian integers, for keys that must sort numerically.
inline void put_be64(std::string& out, uint64_t v) {
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((v >> (i * 8)) & 0xff));
}
inline void put_be32(std::string& out, uint32_t v) {
  for (int i = 3; i >= 0; --i) out.push_back(static_cast<char>((v >> (i * 8)) & 0xff));
}
inline uint64_t get_be64(std::string_view in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}
inline uint32_t get_be32(std::string_view in) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}

}  // namespace mail
