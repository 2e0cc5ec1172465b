package io.choir.server.security;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.choir.proto.Batch;
import io.choir.proto.BatchOp;
import io.choir.proto.CompareAndSet;
import io.choir.proto.Delete;
import io.choir.proto.Get;
import io.choir.proto.Put;
import io.choir.proto.RegisterSession;
import io.choir.proto.Request;
import io.choir.proto.Scan;
import io.choir.proto.StatusRequest;
import java.util.HexFormat;
import javax.security.auth.x500.X500Principal;
import org.junit.jupiter.api.Test;

/** AccessControlTest checks the access file's parsing and the permission each request needs. */
class AccessControlTest {
  private static final String READER_TOKEN = "reader-secret-token";
  private static final String FILE = "identities:\n"
      + "  - name: root\n"
      + "    cert_cn: root\n"
      + "    permissions: [{prefix: \"\", access: readwrite}]\n"
      + "  - name: ops\n"
      + "    cert_dn: \"CN=ops,O=Example,C=DE\"\n"
      + "    permissions: [{prefix: \"ops/\", access: readwrite}, {prefix: \"\", access: read}]\n"
      + "  - name: reader\n"
      + "    token_sha256: " + HexFormat.of().formatHex(AccessControl.sha256(READER_TOKEN)) + "\n"
      + "    permissions:\n"
      + "      - {prefix: \"app/\", access: read}\n"
      + "  - name: app\n"
      + "    cert_cn: app\n"
      + "    permissions:\n"
      + "      - {prefix: \"app/\", access: readwrite}\n";

  private final AccessControl access = AccessControl.parse(FILE);
  private final AccessControl.Identity root = access.forCertificate(new X500Principal("CN=root,O=whatever"));
  private final AccessControl.Identity reader = access.forToken(READER_TOKEN);
  private final AccessControl.Identity app = access.forCertificate(new X500Principal("CN=app"));

  private static ByteString b(String s) {
    return ByteString.copyFromUtf8(s);
  }

  private static Request get(String key) {
    return Request.newBuilder().setGet(Get.newBuilder().setKey(b(key))).build();
  }

  private static Request put(String key) {
    return Request.newBuilder().setPut(Put.newBuilder().setKey(b(key)).setValue(b("v"))).build();
  }

  private static Request scan(String start, String end) {
    return Request.newBuilder().setScan(Scan.newBuilder().setStartKey(b(start)).setEndKey(b(end))).build();
  }

  private static BatchOp bput(String key) {
    return BatchOp.newBuilder().setPut(Put.newBuilder().setKey(b(key)).setValue(b("v"))).build();
  }

  @Test
  void shouldNameIdentitiesByCertificateCnOrWholeDnOrToken() {
    assertEquals("root", root.name());
    assertEquals("ops", access.forCertificate(new X500Principal("CN=ops, O=Example, C=DE")).name(),
        "a DN compares canonically, spaces and all");
    assertSame(AccessControl.NOBODY, access.forCertificate(new X500Principal("CN=ops,O=Other,C=DE")),
        "a DN that differs in one attribute is someone else");
    assertEquals("reader", reader.name());
    assertNull(access.forToken("reader-secret-tokeN"), "an unknown token names nobody");
    assertSame(AccessControl.NOBODY, access.forCertificate(null), "no certificate, no anonymous entry: nobody");
  }

  @Test
  void shouldDenyAReadOnlyIdentityEveryWriteButAllowItsReads() {
    assertNull(access.check(reader, get("app/x")));
    AccessControl.Denial put = access.check(reader, put("app/x"));
    assertNotNull(put, "a read-only identity's put is denied");
    assertTrue(put.message().contains("read-write") && put.message().contains("\"app/x\""), put.message());
    assertNotNull(access.check(reader, Request.newBuilder().setDelete(Delete.newBuilder().setKey(b("app/x"))).build()));
    assertNotNull(access.check(reader, Request.newBuilder().setCompareAndSet(CompareAndSet.newBuilder()
        .setKey(b("app/x")).setExpectAbsent(true).setNewValue(b("v"))).build()), "compare-and-set writes");
    assertNotNull(access.check(reader, get("other")), "reads only under its prefix");
    assertNotNull(access.check(reader, Request.newBuilder().setRegisterSession(RegisterSession.getDefaultInstance())
        .setClientId(-1).build()), "no write permission: no session");
    assertNull(access.check(app, Request.newBuilder().setRegisterSession(RegisterSession.getDefaultInstance())
        .setClientId(-1).build()));
    assertNull(access.check(root, put("anything")));
  }

  @Test
  void shouldAllowAScanOnlyWithinOnePermittedPrefix() {
    assertNull(access.check(reader, scan("app/", "app0")), "exactly the prefix's range");
    assertNull(access.check(reader, scan("app/a", "app/b")));
    assertNotNull(access.check(reader, scan("app/", "")), "to the end of the keys is beyond app/");
    assertNotNull(access.check(reader, scan("app/", "app1")), "past the prefix's range");
    assertNotNull(access.check(reader, scan("ap", "app/z")), "starts before the prefix");
    AccessControl.Denial d = access.check(reader, scan("a", "b"));
    assertTrue(d.message().startsWith("scan:") && d.message().contains("[\"a\", \"b\")"), d.message());
    assertNull(access.check(root, scan("", "")), "the prefix \"\" holds everything");
    AccessControl.Identity ops = access.forCertificate(new X500Principal("CN=ops,O=Example,C=DE"));
    assertNull(access.check(ops, scan("", "")), "ops reads everything");
  }

  @Test
  void shouldCheckEveryOpOfABatchAndNameTheFirstDenied() {
    Request batch = Request.newBuilder().setBatch(Batch.newBuilder()
        .addOps(bput("app/1"))
        .addOps(BatchOp.newBuilder().setDelete(Delete.newBuilder().setKey(b("app/2"))))
        .addOps(bput("other/3"))
        .addOps(bput("other/4"))).build();
    AccessControl.Denial d = access.check(app, batch);
    assertNotNull(d);
    assertEquals(2, d.failedIndex());
    assertTrue(d.message().startsWith("batch operation 2:"), d.message());
    assertNull(access.check(root, batch));
  }

  @Test
  void shouldLetOnlyNamedIdentitiesAskForStatus() {
    Request status = Request.newBuilder().setStatus(StatusRequest.getDefaultInstance()).build();
    assertNull(access.check(reader, status));
    assertNotNull(access.check(AccessControl.NOBODY, status));
    AccessControl open = AccessControl.parse("identities:\n  - name: anyone\n    anonymous: true\n"
        + "    permissions: [{prefix: \"pub/\", access: read}]\n");
    assertEquals("anyone", open.forCertificate(null).name());
    assertNull(open.check(open.forCertificate(null), status));
    assertNull(open.check(open.forCertificate(null), get("pub/x")));
    assertNotNull(open.check(open.forCertificate(null), put("pub/x")));
  }

  @Test
  void shouldAllowEverythingWithoutAnAccessFile() {
    assertFalse(AccessControl.OPEN.enabled());
    assertNull(AccessControl.OPEN.check(AccessControl.NOBODY, put("x")));
  }

  @Test
  void shouldComputeThePrefixRangeAtTheEdgesOfTheByteSpace() {
    assertEquals(b("b"), AccessControl.successor(b("a")));
    assertEquals(b("b"), AccessControl.successor(ByteString.copyFrom(new byte[] {'a', (byte) 0xFF})),
        "a trailing 0xFF carries into the byte before");
    assertNull(AccessControl.successor(ByteString.copyFrom(new byte[] {(byte) 0xFF, (byte) 0xFF})));
    assertNull(AccessControl.successor(ByteString.EMPTY));
    ByteString ff = ByteString.copyFrom(new byte[] {(byte) 0xFF});
    assertTrue(AccessControl.within(ff, ff, ByteString.EMPTY), "all-0xFF prefix reaches the end of the keys");
    assertTrue(AccessControl.within(b("a"), ByteString.copyFrom(new byte[] {'a', (byte) 0x80}), b("b")),
        "bytes compare unsigned");
  }

  @Test
  void shouldRefuseAMalformedAccessFileSayingWhere() {
    assertTrue(assertThrows(IllegalArgumentException.class, () -> AccessControl.parse("identities: []\nextra: 1\n"))
        .getMessage().contains("extra"));
    assertTrue(assertThrows(IllegalArgumentException.class, () -> AccessControl.parse(
        "identities:\n  - name: x\n    cert_cn: a\n    token_sha256: " + "00".repeat(32) + "\n    permissions: []\n"))
        .getMessage().contains("exactly one"));
    assertTrue(assertThrows(IllegalArgumentException.class, () -> AccessControl.parse(
        "identities:\n  - name: x\n    token_sha256: abc\n    permissions: []\n")).getMessage().contains("64 hex"));
    assertTrue(assertThrows(IllegalArgumentException.class, () -> AccessControl.parse(
        "identities:\n  - name: x\n    cert_cn: a\n    permissions: [{prefix: a, access: write}]\n"))
        .getMessage().contains("read or readwrite"));
    assertTrue(assertThrows(IllegalArgumentException.class, () -> AccessControl.parse(
        "identities:\n  - {name: x, cert_cn: a, permissions: []}\n  - {name: x, cert_cn: b, permissions: []}\n"))
        .getMessage().contains("twice"));
    assertThrows(IllegalArgumentException.class, () -> AccessControl.parse("- just a list"));
  }

  @Test
  void shouldShowKeysReadablyAndBounded() {
    assertEquals("\"app/x\"", AccessControl.show(b("app/x")));
    assertEquals("0x00ff", AccessControl.show(ByteString.copyFrom(new byte[] {0, (byte) 0xFF})));
    String big = AccessControl.show(b("k".repeat(1000)));
    assertTrue(big.length() < 100 && big.endsWith("(1000 bytes)"), big);
  }
}
