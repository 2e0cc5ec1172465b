package io.choir.server.replica;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.proto.MessageType;
import io.choir.proto.Prepare;
import io.choir.proto.Request;
import io.choir.server.core.Event;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class ReplicaInboxTest {
  @Test
  void shouldRefuseRequestsAndPeerMessagesBeyondTheirBoundsButNeverAnInternalEvent() throws Exception {
    ReplicaInbox inbox = new ReplicaInbox(2, 1);
    assertTrue(inbox.offer(1, Request.getDefaultInstance()));
    assertTrue(inbox.offer(1, Request.getDefaultInstance()));
    assertFalse(inbox.offer(1, Request.getDefaultInstance()), "event_queue_capacity requests at most");
    assertTrue(inbox.offerPeer(2, 1, MessageType.PREPARE, Prepare.getDefaultInstance()));
    assertTrue(inbox.offerPeer(2, 1, MessageType.PREPARE, Prepare.getDefaultInstance()),
        "peer messages have a bound of their own");
    assertFalse(inbox.offerPeer(2, 1, MessageType.PREPARE, Prepare.getDefaultInstance()));
    for (int i = 0; i < 10; i++) {
      inbox.post(new Event.StateTransferFailed("test"));
    }

    List<Object> burst = new ArrayList<>();
    burst.add(inbox.poll(0));
    inbox.drainTo(burst, 100);
    assertEquals(14, burst.size());
    assertTrue(inbox.isEmpty());
    assertInstanceOf(ReplicaInbox.Incoming.class, burst.get(0));
    assertFalse(inbox.offer(1, Request.getDefaultInstance()), "a place is freed when the loop takes the item");
    burst.forEach(inbox::taken);
    assertTrue(inbox.offer(1, Request.getDefaultInstance()));
    assertTrue(inbox.offerPeer(2, 1, MessageType.PREPARE, Prepare.getDefaultInstance()));
  }

  @Test
  void shouldReturnNothingWhenNothingCameWithinTheWait() throws Exception {
    assertNull(new ReplicaInbox(1, 1).poll(1_000_000));
  }

  @Test
  void shouldShowTheViewTheLoopPublished() {
    ReplicaInbox inbox = new ReplicaInbox(1, 3);
    assertEquals(3, inbox.view());
    inbox.publishView(4);
    assertEquals(4, inbox.view());
  }
}
