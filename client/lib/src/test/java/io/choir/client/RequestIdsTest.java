package io.choir.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;

import io.choir.proto.Get;
import io.choir.proto.Request;
import java.util.List;
import org.junit.jupiter.api.Test;

class RequestIdsTest {
  private static Call call() {
    return new Call(Request.newBuilder().setGet(Get.getDefaultInstance()).build(), Call.Kind.APPLICATION, false,
        null, 0, 1_000_000_000L);
  }

  @Test
  void shouldAnnounceTheNextIdAsFirstIncompleteWhileNothingIsInFlight() {
    RequestIds ids = new RequestIds();
    assertEquals(1, ids.firstIncomplete(), "ids start at 1: 0 means none");
    Call c = call();
    ids.assign(c);
    ids.release(c);
    assertEquals(2, ids.firstIncomplete());
  }

  @Test
  void shouldHoldFirstIncompleteAtTheLowestIdStillInFlight() {
    RequestIds ids = new RequestIds();
    Call a = call();
    Call b = call();
    Call c = call();
    ids.assign(a);
    ids.assign(b);
    ids.assign(c);
    assertEquals(List.of(1L, 2L, 3L), List.of(a.requestId, b.requestId, c.requestId));
    ids.release(b);
    assertEquals(1, ids.firstIncomplete(), "a finished id above the lowest does not move it");
    ids.release(a);
    assertEquals(3, ids.firstIncomplete());
  }

  @Test
  void shouldFindTheCallOfAnIdOnlyWhileItIsInFlight() {
    RequestIds ids = new RequestIds();
    Call a = call();
    ids.assign(a);
    assertSame(a, ids.call(a.requestId));
    assertEquals(List.of(a), ids.inFlightCalls());
    ids.release(a);
    ids.release(a); // idempotent
    assertNull(ids.call(a.requestId));
    assertEquals(List.of(), ids.inFlightCalls());
  }

  @Test
  void shouldIgnoreTheReleaseOfACallThatNeverGotAnId() {
    RequestIds ids = new RequestIds();
    Call a = call();
    ids.assign(a);
    ids.release(call());
    assertSame(a, ids.call(a.requestId));
    assertEquals(1, ids.firstIncomplete());
  }
}
