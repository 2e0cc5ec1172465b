package io.choir.server.security;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.choir.proto.CancelWatch;
import io.choir.proto.Request;
import io.choir.proto.Watch;
import java.util.HexFormat;
import org.junit.jupiter.api.Test;

/** A watch needs read permission on its key, or on a prefix that holds its whole prefix. */
class AccessControlWatchTest {
  private static final String TOKEN = "watcher-token";
  private final AccessControl access = AccessControl.parse("identities:\n"
      + "  - name: reader\n"
      + "    token_sha256: " + HexFormat.of().formatHex(AccessControl.sha256(TOKEN)) + "\n"
      + "    permissions: [{prefix: \"app/\", access: read}]\n");
  private final AccessControl.Identity reader = access.forToken(TOKEN);

  private static Request watch(String key, boolean prefix) {
    return Request.newBuilder().setWatch(Watch.newBuilder().setKey(ByteString.copyFromUtf8(key)).setPrefix(prefix))
        .build();
  }

  @Test
  void shouldAllowAWatchWithinAReadPrefixOnly() {
    assertNull(access.check(reader, watch("app/x", false)));
    assertNull(access.check(reader, watch("app/", true)));
    assertNull(access.check(reader, watch("app/sub/", true)));
    AccessControl.Denial everything = access.check(reader, watch("", true));
    assertNotNull(everything, "every key is more than app/");
    assertTrue(everything.message().startsWith("watch of prefix: identity 'reader' has no read permission"),
        everything.message());
    assertNotNull(access.check(reader, watch("ap", true)), "the prefix ap holds keys outside app/");
    assertNotNull(access.check(reader, watch("other", false)));
    assertNotNull(access.check(AccessControl.NOBODY, watch("app/x", false)));
    assertNull(access.check(reader, Request.newBuilder().setCancelWatch(CancelWatch.newBuilder().setWatchRequestId(3))
        .build()), "a cancel only ever touches the connection's own watches");
  }
}
