package io.choir.server.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.choir.proto.Authenticate;
import io.choir.proto.Get;
import io.choir.proto.Put;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import io.choir.server.security.AccessControl;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.netty.channel.embedded.EmbeddedChannel;
import java.util.HexFormat;
import org.junit.jupiter.api.Test;

/**
 * ClientAccessHandlerTest drives the access check on an EmbeddedChannel: a denied request is answered
 * PERMISSION_DENIED and never passed on towards the replica (so it cannot be executed); an allowed one
 * passes unchanged; a token changes the connection's identity; an unknown token closes it.
 */
class ClientAccessHandlerTest {
  private static final String TOKEN = "t0ken";
  private final SimpleMeterRegistry metrics = new SimpleMeterRegistry();
  private final AccessControl access = AccessControl.parse("identities:\n"
      + "  - name: reader\n    anonymous: true\n    permissions: [{prefix: \"app/\", access: read}]\n"
      + "  - name: writer\n    token_sha256: " + HexFormat.of().formatHex(AccessControl.sha256(TOKEN)) + "\n"
      + "    permissions: [{prefix: \"app/\", access: readwrite}]\n");

  private EmbeddedChannel channel(AccessControl a) {
    return new EmbeddedChannel(new ClientAccessHandler(new ClientAccessHandler.Shared(a, metrics)));
  }

  private static Request put(long id, String key) {
    return Request.newBuilder().setRequestId(id).setClientId(7)
        .setPut(Put.newBuilder().setKey(ByteString.copyFromUtf8(key)).setValue(ByteString.copyFromUtf8("v"))).build();
  }

  private static Request auth(String token) {
    return Request.newBuilder().setAuthenticate(Authenticate.newBuilder().setToken(token)).build();
  }

  @Test
  void shouldAnswerADeniedRequestItselfAndNeverPassItOn() {
    EmbeddedChannel ch = channel(access);
    ch.writeInbound(put(5, "app/x"));
    assertNull(ch.readInbound(), "a denied put never goes on towards the core");
    Response r = ch.readOutbound();
    assertEquals(Status.PERMISSION_DENIED, r.getStatus());
    assertEquals(5, r.getRequestId());
    assertTrue(r.getError().contains("not executed"), r.getError());
    assertEquals(1.0, metrics.counter("choir.requests.permission_denied").count());
    Request get = Request.newBuilder().setRequestId(6).setGet(Get.newBuilder().setKey(ByteString.copyFromUtf8("app/x")))
        .build();
    ch.writeInbound(get);
    assertSame(get, ch.readInbound(), "an allowed get passes unchanged");
  }

  @Test
  void shouldSwitchToTheTokensIdentityAndCloseOnAnUnknownToken() {
    EmbeddedChannel ch = channel(access);
    ch.writeInbound(auth(TOKEN));
    assertNull(ch.readInbound(), "authenticate never reaches the core");
    assertEquals(Status.OK, ((Response) ch.readOutbound()).getStatus());
    Request p = put(9, "app/x");
    ch.writeInbound(p);
    assertSame(p, ch.readInbound(), "the writer token may put under app/");
    EmbeddedChannel bad = channel(access);
    bad.writeInbound(auth("guess"));
    Response r = bad.readOutbound();
    assertEquals(Status.PERMISSION_DENIED, r.getStatus());
    assertFalse(bad.isActive(), "one guess per connection");
    assertEquals(1.0, metrics.counter("choir.clients.tokens_refused").count());
  }

  @Test
  void shouldPassEverythingWithoutAnAccessFileAndStillAnswerAuthenticate() {
    EmbeddedChannel ch = channel(AccessControl.OPEN);
    Request p = put(1, "anything");
    ch.writeInbound(p);
    assertSame(p, ch.readInbound());
    ch.writeInbound(auth("whatever"));
    assertNull(ch.readInbound());
    assertEquals(Status.OK, ((Response) ch.readOutbound()).getStatus());
  }
}
