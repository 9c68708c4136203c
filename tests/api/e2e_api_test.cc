// The end-to-end part of the C API (tidings_sync.h): the device keys every
// store gets when it is made, fingerprints, the pinned devices and their
// trust, key-change events and their listener, conversation modes, and the
// limits a send is checked against once a sync handle knows its backends.
// Other users' devices are pinned here through the store's own directory
// (sync/e2e), as a sync round would pin them.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
// GCC 12 with AddressSanitizer reports -Wmaybe-uninitialized inside
// <regex>'s std::function (a false positive in the library header).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <regex>
#include <string>
#include <vector>

#include "crypto/keys.h"
#include "engine/store.h"
#include "sync/e2e/directory.h"
#include "sync/e2e/session.h"
#include "tests/api/api_test_util.h"
#include "tidings/tidings_attachments.h"
#include "tidings/tidings_sync.hpp"

namespace {

using tidings::apitest::kAppArn;
using tidings::apitest::kKey;
using tidings::apitest::kRefused;
using tidings::apitest::TempDir;

bool IsFingerprint(const std::string& s) {
  return std::regex_match(s, std::regex("[0-9]{5}( [0-9]{5}){5}"));
}

class E2eApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::setenv("AWS_ACCESS_KEY_ID", "test", 0);
    ::setenv("AWS_SECRET_ACCESS_KEY", "test", 0);
    ::setenv("AWS_REGION", "us-east-1", 0);
    path_ = dir_ / "store";
    tidings_key_source key = tidings_key_raw(kKey);
    tidings_error e{};
    ASSERT_EQ(tidings_store_create(path_.c_str(), &key, "alice", &store_, &e), TIDINGS_OK)
        << e.message;
  }
  void TearDown() override { tidings_store_close(store_); }

  void Reopen(bool read_only = false) {
    tidings_store_close(store_);
    store_ = nullptr;
    tidings_key_source key = tidings_key_raw(kKey);
    tidings_open_options o;
    tidings_open_options_init(&o);
    o.read_only = read_only;
    tidings_error e{};
    ASSERT_EQ(tidings_store_open(path_.c_str(), &key, &o, &store_, &e), TIDINGS_OK) << e.message;
  }

  // Runs `f` on the closed store's sync state, as a sync round would write.
  template <typename F>
  void AsSync(F&& f) {
    tidings_store_close(store_);
    store_ = nullptr;
    auto key = tidings::crypto::SecretKey::FromBytes(std::span<const uint8_t>(kKey));
    EXPECT_TRUE(key.ok());
    tidings::engine::StoreOptions o;
    auto store = tidings::engine::Store::Open(
        path_, tidings::crypto::KeySource::Raw(std::move(key).value()), o);
    EXPECT_TRUE(store.ok()) << store.status().message();
    f((*store)->sync_log());
    store->reset();
    Reopen();
  }

  // Pins a new device of `user`, as a sync round that met it would; returns
  // its device id.
  std::string PinDevice(const std::string& user) {
    auto device = tidings::e2e::DeviceKeys::Generate(user, 1'000);
    EXPECT_TRUE(device.ok());
    AsSync([&](tidings::engine::SyncLog& log) {
      tidings::e2e::Directory dir(&log);
      std::vector<tidings::engine::SyncStateWrite> writes;
      EXPECT_TRUE(dir.Pin(device->record(), 2'000, &writes).ok());
      EXPECT_TRUE(log.PutSyncStates(writes).ok());
    });
    return device->device_id();
  }

  tidings_identity* Identity() {
    tidings_identity* id = nullptr;
    tidings_error e{};
    EXPECT_EQ(tidings_store_identity(store_, &id, &e), TIDINGS_OK) << e.message;
    return id;
  }

  std::vector<tidings_device> Devices(const char* user, tidings_device_list** keep) {
    tidings_error e{};
    EXPECT_EQ(tidings_store_devices(store_, user, keep, &e), TIDINGS_OK) << e.message;
    std::vector<tidings_device> out;
    for (size_t i = 0; i < tidings_device_list_count(*keep); ++i) {
      out.push_back(*tidings_device_list_at(*keep, i));
    }
    return out;
  }

  // A sync handle over Chime (nothing listens): it records Chime's limits.
  void SyncWithChime() {
    tidings_chime_config chime;
    tidings_chime_config_init(&chime);
    chime.app_instance_arn = kAppArn;
    const std::string user = std::string(kAppArn) + "/user/alice";
    chime.user_arn = user.c_str();
    chime.endpoint = kRefused;
    tidings_sync* sync = nullptr;
    tidings_error e{};
    ASSERT_EQ(tidings_sync_open_chime(store_, &chime, &sync, &e), TIDINGS_OK) << e.message;
    tidings_sync_close(sync);
  }

  tidings_code Send(const char* conv, const std::string& body, tidings_error* e,
                    const char* message_id = nullptr, const char* type = nullptr,
                    tidings_message** out = nullptr) {
    tidings_send_request r;
    tidings_send_request_init(&r);
    r.conversation_id = conv;
    r.body = body.data();
    r.body_size = body.size();
    r.message_id = message_id;
    r.content_type = type;
    return tidings_store_send(store_, &r, out, e);
  }

  // The N of "at most N bytes per message" in a TOO_LARGE message.
  static size_t LimitIn(const tidings_error& e) {
    std::cmatch m;
    EXPECT_TRUE(std::regex_search(e.message, m, std::regex("at most ([0-9]+) bytes per message")))
        << e.message;
    return m.empty() ? 0 : std::stoul(m[1].str());
  }

  void Create(const char* id, bool plaintext) {
    tidings_error e{};
    const char* members[] = {"alice", "bob"};
    ASSERT_EQ(tidings_store_create_conversation(store_, id, "t", members, 2, plaintext, &e),
              TIDINGS_OK)
        << e.message;
  }

  tidings_conversation_mode ModeOf(const char* id) {
    tidings_conversation_mode mode = TIDINGS_MODE_END_TO_END;
    tidings_error e{};
    EXPECT_EQ(tidings_store_conversation_mode(store_, id, &mode, &e), TIDINGS_OK) << e.message;
    return mode;
  }

  TempDir dir_;
  std::string path_;
  tidings_store* store_ = nullptr;
};

TEST_F(E2eApiTest, AStoreHasItsDeviceKeysFromCreationWithStableFingerprints) {
  tidings_identity* id = Identity();
  ASSERT_NE(id, nullptr);
  EXPECT_STREQ(id->user, "alice");
  EXPECT_TRUE(std::regex_match(id->device_id, std::regex("[0-9a-f]{32}"))) << id->device_id;
  EXPECT_TRUE(IsFingerprint(id->fingerprint)) << id->fingerprint;
  EXPECT_TRUE(IsFingerprint(id->user_fingerprint)) << id->user_fingerprint;
  const std::string device = id->device_id, fp = id->fingerprint, ufp = id->user_fingerprint;
  tidings_identity_free(id);
  Reopen(/*read_only=*/true);  // the same keys, read back by any handle
  id = Identity();
  ASSERT_NE(id, nullptr);
  EXPECT_EQ(device, id->device_id);
  EXPECT_EQ(fp, id->fingerprint);
  EXPECT_EQ(ufp, id->user_fingerprint);
  tidings_identity_free(id);
  tidings_identity_free(nullptr);
}

TEST_F(E2eApiTest, TheDeviceListHasThisDeviceAndEveryPinnedOne) {
  tidings_device_list* list = nullptr;
  auto devices = Devices(nullptr, &list);
  ASSERT_EQ(devices.size(), 1u);
  EXPECT_STREQ(devices[0].user, "alice");
  EXPECT_TRUE(devices[0].this_device);
  EXPECT_EQ(devices[0].trust, TIDINGS_TRUST_UNVERIFIED);
  EXPECT_TRUE(IsFingerprint(devices[0].fingerprint));
  tidings_device_list_free(list);

  // Every user the store knows: itself and its conversations' members.
  const std::string bob = PinDevice("bob");
  Create("c", false);
  devices = Devices(nullptr, &list);
  ASSERT_EQ(devices.size(), 2u);
  EXPECT_STREQ(devices[1].user, "bob");
  EXPECT_EQ(devices[1].device_id, bob);
  EXPECT_FALSE(devices[1].this_device);
  EXPECT_EQ(devices[1].first_seen_ms, 2'000u);
  tidings_device_list_free(list);
  devices = Devices("carol", &list);  // unknown: none
  EXPECT_TRUE(devices.empty());
  tidings_device_list_free(list);
  EXPECT_EQ(tidings_device_list_count(nullptr), 0u);
  EXPECT_EQ(tidings_device_list_at(nullptr, 0), nullptr);
}

TEST_F(E2eApiTest, VerifyAndRemoveChangeTrust) {
  const std::string bob = PinDevice("bob");
  tidings_error e{};
  ASSERT_EQ(tidings_store_set_device_trust(store_, "bob", bob.c_str(), TIDINGS_TRUST_VERIFIED, &e),
            TIDINGS_OK)
      << e.message;
  tidings_device_list* list = nullptr;
  EXPECT_EQ(Devices("bob", &list).at(0).trust, TIDINGS_TRUST_VERIFIED);
  tidings_device_list_free(list);
  ASSERT_EQ(tidings_store_set_device_trust(store_, "bob", bob.c_str(), TIDINGS_TRUST_REMOVED, &e),
            TIDINGS_OK)
      << e.message;
  EXPECT_EQ(Devices("bob", &list).at(0).trust, TIDINGS_TRUST_REMOVED);
  EXPECT_STREQ(tidings_trust_name(TIDINGS_TRUST_REMOVED), "removed");
  tidings_device_list_free(list);
}

TEST_F(E2eApiTest, AnUnknownDeviceIsNotFoundAndThisDeviceCannotBeRemoved) {
  tidings_error e{};
  EXPECT_EQ(tidings_store_set_device_trust(store_, "bob", "0123456789abcdef0123456789abcdef",
                                           TIDINGS_TRUST_VERIFIED, &e),
            TIDINGS_NOT_FOUND);
  EXPECT_NE(std::strstr(e.message, "tidings keys"), nullptr) << e.message;
  tidings_identity* id = Identity();
  ASSERT_NE(id, nullptr);
  EXPECT_EQ(
      tidings_store_set_device_trust(store_, "alice", id->device_id, TIDINGS_TRUST_REMOVED, &e),
      TIDINGS_FAILED_PRECONDITION);
  EXPECT_EQ(tidings_store_set_device_trust(store_, "alice", id->device_id,
                                           static_cast<tidings_trust>(7), &e),
            TIDINGS_INVALID_ARGUMENT);
  tidings_identity_free(id);
}

TEST_F(E2eApiTest, KeyChangesAreListedAndHandedToTheListenerOnce) {
  PinDevice("bob");  // first sight of bob: pinned, no event
  const std::string second = PinDevice("bob");
  tidings_key_event_list* events = nullptr;
  tidings_error e{};
  ASSERT_EQ(tidings_store_key_events(store_, 0, &events, &e), TIDINGS_OK) << e.message;
  ASSERT_EQ(tidings_key_event_list_count(events), 1u);
  const tidings_key_event* ev = tidings_key_event_list_at(events, 0);
  EXPECT_EQ(ev->kind, TIDINGS_KEY_EVENT_NEW_DEVICE);
  EXPECT_STREQ(ev->user, "bob");
  EXPECT_EQ(ev->device_id, second);
  const uint64_t seq = ev->seq;
  tidings_key_event_list_free(events);
  ASSERT_EQ(tidings_store_key_events(store_, seq, &events, &e), TIDINGS_OK);
  EXPECT_EQ(tidings_key_event_list_count(events), 0u);
  tidings_key_event_list_free(events);

  // The listener hears it after a round, and not again after the next one
  // nor on a new handle: the store remembers what was delivered.
  std::vector<std::string> heard;
  auto listen = [](void* ctx, const tidings_key_event* event) {
    static_cast<std::vector<std::string>*>(ctx)->push_back(
        std::string(tidings_key_event_kind_name(event->kind)) + " " + event->user + " " +
        event->device_id);
  };
  for (int handle = 0; handle < 2; ++handle) {
    tidings_dynamodb_config dynamo;
    tidings_dynamodb_config_init(&dynamo);
    dynamo.endpoint = kRefused;
    tidings_sync* sync = nullptr;
    ASSERT_EQ(tidings_sync_open_dynamodb(store_, &dynamo, &sync, &e), TIDINGS_OK) << e.message;
    ASSERT_EQ(tidings_sync_set_key_listener(sync, listen, &heard, &e), TIDINGS_OK) << e.message;
    ASSERT_EQ(tidings_sync_once(sync, &e), TIDINGS_OK) << e.message;
    ASSERT_EQ(tidings_sync_once(sync, &e), TIDINGS_OK) << e.message;
    tidings_sync_close(sync);
  }
  EXPECT_EQ(heard, std::vector<std::string>{"new-device bob " + second});
}

TEST_F(E2eApiTest, ConversationModesCreateUpgradeAndRead) {
  Create("secret", false);
  Create("interop", true);
  EXPECT_EQ(ModeOf("secret"), TIDINGS_MODE_END_TO_END_PENDING);
  EXPECT_EQ(ModeOf("interop"), TIDINGS_MODE_PLAINTEXT);
  EXPECT_STREQ(tidings_conversation_mode_name(ModeOf("interop")), "plaintext");
  EXPECT_STREQ(tidings_conversation_mode_name(TIDINGS_MODE_END_TO_END_PENDING),
               "end-to-end (pending first sync)");
  EXPECT_STREQ(tidings_conversation_mode_name(TIDINGS_MODE_END_TO_END), "end-to-end");

  tidings_error e{};
  EXPECT_EQ(tidings_store_create_conversation(store_, "interop", "", nullptr, 0, false, &e),
            TIDINGS_ALREADY_EXISTS);
  EXPECT_EQ(ModeOf("interop"), TIDINGS_MODE_PLAINTEXT);  // kept
  ASSERT_EQ(tidings_store_upgrade_conversation(store_, "interop", &e), TIDINGS_OK) << e.message;
  EXPECT_EQ(ModeOf("interop"), TIDINGS_MODE_END_TO_END_PENDING);
  ASSERT_EQ(tidings_store_upgrade_conversation(store_, "secret", &e), TIDINGS_OK);  // idempotent
  EXPECT_EQ(ModeOf("secret"), TIDINGS_MODE_END_TO_END_PENDING);

  tidings_conversation_mode mode;
  EXPECT_EQ(tidings_store_conversation_mode(store_, "nope", &mode, &e), TIDINGS_NOT_FOUND);
  EXPECT_EQ(tidings_store_upgrade_conversation(store_, "nope", &e), TIDINGS_NOT_FOUND);
  tidings_conversation* c = nullptr;
  ASSERT_EQ(tidings_store_get_conversation(store_, "interop", &c, &e), TIDINGS_OK);
  EXPECT_EQ(c->member_count, 2u);
  tidings_conversation_free(c);
}

TEST_F(E2eApiTest, AConversationWithPlaintextHistoryStaysPlaintextUntilUpgraded) {
  // Synced before modes existed: a Chime channel, no mode recorded. Sync
  // keeps it plaintext (its history is there), and so do the read and the
  // limits.
  Create("old", false);
  EXPECT_EQ(ModeOf("old"), TIDINGS_MODE_END_TO_END_PENDING);
  AsSync([](tidings::engine::SyncLog& log) {
    EXPECT_TRUE(log.SetConversationRemoteId("old", "chime", "arn:channel").ok());
  });
  EXPECT_EQ(ModeOf("old"), TIDINGS_MODE_PLAINTEXT);
  SyncWithChime();
  tidings_error e{};
  EXPECT_EQ(Send("old", std::string(4'096, 'x'), &e), TIDINGS_OK) << e.message;
  tidings_code code = Send("old", std::string(4'097, 'x'), &e);
  EXPECT_EQ(code, TIDINGS_TOO_LARGE);
  EXPECT_EQ(LimitIn(e), 4'096u);
  ASSERT_EQ(tidings_store_upgrade_conversation(store_, "old", &e), TIDINGS_OK) << e.message;
  EXPECT_EQ(ModeOf("old"), TIDINGS_MODE_END_TO_END_PENDING);
  // Sealed now: 4 KB is over the frame, so the text travels as a file.
  tidings_message* m = nullptr;
  ASSERT_EQ(Send("old", std::string(4'096, 'x'), &e, nullptr, nullptr, &m), TIDINGS_OK)
      << e.message;
  ASSERT_EQ(m->attachment_count, 1u);
  EXPECT_TRUE(m->attachments[0]->body);
  tidings_message_free(m);
}

// Attachments are checked at the door, before anything is encrypted or
// uploaded: their references (names, previews) take room in the sealed
// frame, and a plaintext Chime conversation cannot carry them at all.
TEST_F(E2eApiTest, AttachmentsAreCheckedAgainstTheFrameBeforeAnyUpload) {
  SyncWithChime();
  const std::string file = dir_ / "scan.pdf";
  FILE* f = std::fopen(file.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  std::fputs("%PDF", f);
  std::fclose(f);
  std::string preview(2'048, 'p');
  auto send = [&](const char* conv, size_t body, size_t preview_size, tidings_error* e,
                  size_t files = 1) {
    tidings_attachment_input in;
    tidings_attachment_input_init(&in);
    in.path = file.c_str();
    in.name = "scan.pdf";
    in.preview = reinterpret_cast<const uint8_t*>(preview.data());
    in.preview_size = preview_size;
    const tidings_attachment_input* list[] = {&in, &in};
    const std::string text(body, 'x');
    tidings_send_request r;
    tidings_send_request_init(&r);
    r.conversation_id = conv;
    r.body = text.data();
    r.body_size = text.size();
    r.attachments = list;
    r.attachment_count = files;
    return tidings_store_send(store_, &r, nullptr, e);
  };
  tidings_error e{};
  // The body's room shrinks by the reference: a body that fits alone does
  // not beside a file with a 1,000-byte preview, and travels as a file too.
  tidings::engine::Operation shape;
  shape.kind = tidings::engine::OpKind::kSend;
  shape.op_id = shape.message_id = std::string(36, 'x');
  shape.conversation_id = "c";
  shape.author = "alice";
  const size_t alone = tidings::e2e::MaxSealedBody(3072, shape);
  tidings_message* m = nullptr;
  auto count_and_free = [&] {
    const size_t n = m == nullptr ? 0 : m->attachment_count;
    tidings_message_free(m);
    m = nullptr;
    return n;
  };
  ASSERT_EQ(Send("c", std::string(alone - 64, 'x'), &e, nullptr, nullptr, &m), TIDINGS_OK);
  EXPECT_EQ(count_and_free(), 0u);
  EXPECT_EQ(send("c", alone, 1'000, &e), TIDINGS_OK) << e.message;
  EXPECT_EQ(send("c", 100, 1'000, &e), TIDINGS_OK) << e.message;
  // Two files with 2 KiB previews each do not fit at all.
  EXPECT_EQ(send("c", 0, 2'048, &e, 2), TIDINGS_TOO_LARGE);
  EXPECT_NE(std::strstr(e.message, "previews"), nullptr) << e.message;
  // Plaintext Chime: refused, saying how to send it.
  Create("plain", true);
  EXPECT_EQ(send("plain", 10, 0, &e), TIDINGS_FAILED_PRECONDITION);
  EXPECT_NE(std::strstr(e.message, "end-to-end"), nullptr) << e.message;
  // Nothing refused at the door left an object behind: the file (stored
  // once) and the long body of the second send.
  tidings_attachment_list* list = nullptr;
  ASSERT_EQ(tidings_store_attachments(store_, nullptr, &list, &e), TIDINGS_OK) << e.message;
  EXPECT_EQ(tidings_attachment_list_count(list), 2u);
  tidings_attachment_list_free(list);
}

TEST_F(E2eApiTest, WithoutAChimeHandleALargeMessageIsAccepted) {
  tidings_error e{};
  EXPECT_EQ(Send("c", std::string(5'000, 'x'), &e), TIDINGS_OK) << e.message;
}

// A body over what the sealed frame holds is not refused: from one byte
// over the exact limit it travels as a file, and the store keeps the text.
TEST_F(E2eApiTest, AnEndToEndSendOverTheSealedFrameTravelsAsAFile) {
  SyncWithChime();
  tidings_error e{};
  tidings::engine::Operation shape;
  shape.kind = tidings::engine::OpKind::kSend;
  shape.op_id = shape.message_id = "m-1";
  shape.conversation_id = "c";
  shape.author = "alice";
  shape.content_type = "text/plain";
  const size_t limit = tidings::e2e::MaxSealedBody(3072, shape);
  EXPECT_GT(limit, 2'000u);
  auto as_file = [&](const char* id, size_t n) {
    tidings_message* sent = nullptr;
    EXPECT_EQ(Send("c", std::string(n, 'x'), &e, id, nullptr, &sent), TIDINGS_OK) << e.message;
    const bool file = sent != nullptr && sent->attachment_count == 1 && sent->attachments[0]->body;
    if (sent != nullptr) {
      EXPECT_EQ(sent->body_size, n) << "the store keeps the text";
    }
    tidings_message_free(sent);
    return file;
  };
  EXPECT_TRUE(as_file("m-9", limit + 1));
  tidings_message* m = nullptr;
  ASSERT_EQ(Send("c", std::string(limit, 'x'), &e, "m-1", nullptr, &m), TIDINGS_OK) << e.message;
  EXPECT_EQ(m->attachment_count, 0u);

  // Any later handle on the store does the same, with no sync handle.
  Reopen();
  EXPECT_TRUE(as_file("m-2", limit + 1));
  EXPECT_FALSE(as_file("m-3", limit));
  // The store's own limit stands.
  EXPECT_EQ(Send("c", std::string(64 * 1024 + 1, 'x'), &e, "m-4"), TIDINGS_TOO_LARGE);

  // An edit: its own exact limit.
  ASSERT_EQ(tidings_store_edit(store_, "m-1", std::string(5'000, 'z').data(), 5'000, nullptr, &e),
            TIDINGS_TOO_LARGE);
  const size_t edit_limit = LimitIn(e);
  EXPECT_EQ(tidings_store_edit(store_, "m-1", std::string(edit_limit + 1, 'z').data(),
                               edit_limit + 1, nullptr, &e),
            TIDINGS_TOO_LARGE);
  EXPECT_EQ(tidings_store_edit(store_, "m-1", std::string(edit_limit, 'z').data(), edit_limit,
                               nullptr, &e),
            TIDINGS_OK)
      << e.message;
  tidings_message_free(m);
}

TEST_F(E2eApiTest, APlaintextSendIsCheckedAgainstChimeContentAtTheExactLimit) {
  Create("interop", true);
  SyncWithChime();
  tidings_error e{};
  EXPECT_EQ(Send("interop", std::string(4'097, 'x'), &e), TIDINGS_TOO_LARGE);
  EXPECT_EQ(LimitIn(e), 4'096u);
  tidings_message* m = nullptr;
  ASSERT_EQ(Send("interop", std::string(4'096, 'x'), &e, nullptr, nullptr, &m), TIDINGS_OK)
      << e.message;
  // Bytes that are not UTF-8 travel base64-encoded: 3072 of them fill it.
  const std::string binary(3'073, '\xff');
  EXPECT_EQ(Send("interop", binary, &e, nullptr, "application/octet-stream"), TIDINGS_TOO_LARGE);
  EXPECT_EQ(LimitIn(e), 3'072u);
  EXPECT_EQ(Send("interop", binary.substr(1), &e, nullptr, "application/octet-stream"), TIDINGS_OK)
      << e.message;
  // Chime's 1024 bytes of message metadata hold Tidings' envelope too: 1000
  // bytes of the message's own metadata pass the store's limit, not Chime's.
  const std::string value(990, 'v');
  const tidings_pair pair{"k", value.c_str()};
  const tidings_pair* pairs[] = {&pair};
  tidings_send_request r;
  tidings_send_request_init(&r);
  r.conversation_id = "interop";
  r.body = "hi";
  r.body_size = 2;
  r.metadata = pairs;
  r.metadata_count = 1;
  EXPECT_EQ(tidings_store_send(store_, &r, nullptr, &e), TIDINGS_TOO_LARGE);
  EXPECT_NE(std::strstr(e.message, "1024 bytes of metadata on Chime"), nullptr) << e.message;
  r.conversation_id = "secret";  // sealed: the metadata is inside the frame's limit
  EXPECT_EQ(tidings_store_send(store_, &r, nullptr, &e), TIDINGS_OK) << e.message;
  // An edit travels in Tidings' JSON envelope: less room.
  const std::string id = m->id;
  tidings_message_free(m);
  const std::string big(4'096, 'z');
  ASSERT_EQ(tidings_store_edit(store_, id.c_str(), big.data(), big.size(), nullptr, &e),
            TIDINGS_TOO_LARGE);
  const size_t limit = LimitIn(e);
  EXPECT_LT(limit, 4'000u);
  EXPECT_GT(limit, 3'500u);
  EXPECT_EQ(tidings_store_edit(store_, id.c_str(), big.data(), limit + 1, nullptr, &e),
            TIDINGS_TOO_LARGE);
  EXPECT_EQ(tidings_store_edit(store_, id.c_str(), big.data(), limit, nullptr, &e), TIDINGS_OK)
      << e.message;
}

TEST(E2eCppApi, TheWrappersReadAndWriteTheSame) {
  TempDir dir;
  auto store = tidings::api::Store::Create(
      dir / "s", tidings::api::Key::Raw(std::span<const uint8_t, TIDINGS_KEY_SIZE>(kKey)), "alice");
  ASSERT_TRUE(store.ok()) << store.status().message();
  auto me = tidings::api::GetIdentity(*store);
  ASSERT_TRUE(me.ok()) << me.status().message();
  EXPECT_TRUE(IsFingerprint(me->fingerprint));
  auto devices = tidings::api::GetDevices(*store);
  ASSERT_TRUE(devices.ok());
  ASSERT_EQ(devices->size(), 1u);
  EXPECT_EQ(devices->at(0).device_id, me->device_id);
  EXPECT_STREQ(devices->at(0).trust_name(), "unverified");
  ASSERT_TRUE(tidings::api::VerifyDevice(*store, "alice", me->device_id).ok());
  EXPECT_EQ(tidings::api::GetDevices(*store, "alice")->at(0).trust, TIDINGS_TRUST_VERIFIED);
  EXPECT_EQ(tidings::api::RemoveDevice(*store, "alice", me->device_id).code(),
            TIDINGS_FAILED_PRECONDITION);
  ASSERT_TRUE(tidings::api::CreateConversation(*store, "p", "", {"alice"}, true).ok());
  EXPECT_EQ(*tidings::api::GetConversationMode(*store, "p"), TIDINGS_MODE_PLAINTEXT);
  ASSERT_TRUE(tidings::api::UpgradeConversation(*store, "p").ok());
  EXPECT_EQ(*tidings::api::GetConversationMode(*store, "p"), TIDINGS_MODE_END_TO_END_PENDING);
  EXPECT_TRUE(tidings::api::GetKeyEvents(*store)->empty());
}

}  // namespace
