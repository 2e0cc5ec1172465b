package io.choir.server.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.channel.embedded.EmbeddedChannel;
import java.net.InetAddress;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class ReplyBudgetTest {
  private static final long PER_CONNECTION = 1 << 20;
  private static final long TOTAL = 4 << 20;
  private static final long BIG = ReplyBudget.SMALL_REPLY_BYTES + 1;

  private final List<ReplyBudget.Waiter> woken = new ArrayList<>();
  private final ReplyBudget budget = new ReplyBudget(PER_CONNECTION, TOTAL, woken::add);
  private long ids;

  private ClientConnection connection() {
    return new ClientConnection(++ids, new EmbeddedChannel(), InetAddress.getLoopbackAddress(), null);
  }

  @Test
  void shouldAdmitOneReplyOfAnySizeToAConnectionHoldingNone() {
    ClientConnection c = connection();
    assertEquals(ReplyBudget.Room.YES, budget.tryReserve(c, 3 * PER_CONNECTION));
    assertEquals(3 * PER_CONNECTION, c.replyBytes.get());
    assertEquals(ReplyBudget.Room.NOT_IN_CONNECTION, budget.tryReserve(c, 1));
    assertEquals(3 * PER_CONNECTION, budget.total(), "a refused reply reserves nothing");
  }

  @Test
  void shouldServeASmallReplyToAnIdleConnectionWhileTheTotalIsFull() {
    ClientConnection hog = connection();
    budget.reserve(hog, TOTAL);
    assertEquals(ReplyBudget.Room.YES, budget.tryReserve(connection(), ReplyBudget.SMALL_REPLY_BYTES));
    assertEquals(ReplyBudget.Room.NOT_IN_TOTAL, budget.tryReserve(connection(), BIG));
  }

  @Test
  void shouldAdmitAReplyLargerThanTheWholeTotalOnlyWhenNothingElseIsInFlight() {
    ClientConnection other = connection();
    budget.reserve(other, 1);
    ClientConnection c = connection();
    assertEquals(ReplyBudget.Room.NOT_IN_TOTAL, budget.tryReserve(c, 2 * TOTAL));
    assertEquals(0, c.replyBytes.get(), "the connection's share is given back when the total refuses");
    budget.release(other, 1);
    assertEquals(ReplyBudget.Room.YES, budget.tryReserve(c, 2 * TOTAL));
  }

  @Test
  void shouldWakeAWaiterOnlyOnceTheTotalDropsToItsThreshold() {
    ClientConnection hog = connection();
    budget.reserve(hog, TOTAL);
    ClientConnection c = connection();
    budget.reserve(c, 1); // holding reply bytes: waits while the total is at its bound
    assertTrue(budget.overTotal(c));
    budget.waitForTotal(c);
    assertTrue(woken.isEmpty());
    budget.waitForTotal(c);
    assertTrue(woken.isEmpty(), "waiting again at the same threshold adds no second waiter");

    budget.release(hog, TOTAL);
    assertEquals(1, woken.size());
    ReplyBudget.Waiter w = woken.get(0);
    assertEquals(c, w.connection());
    budget.woke(w);
    assertNull(c.waiter);
    assertFalse(budget.overTotal(c));
  }

  @Test
  void shouldWakeAtOnceAConnectionThatWaitsWhenThereIsAlreadyRoom() {
    ClientConnection c = connection();
    budget.reserve(c, 1);
    budget.waitForTotal(c);
    assertEquals(1, woken.size(), "no lost wake-up: the total was already under the threshold");
  }

  @Test
  void shouldNotWakeAClosedConnection() {
    ClientConnection hog = connection();
    budget.reserve(hog, TOTAL);
    ClientConnection c = connection();
    budget.reserve(c, 1);
    budget.waitForTotal(c);
    budget.forget(c);
    budget.release(hog, TOTAL);
    assertTrue(woken.isEmpty());
  }
}
