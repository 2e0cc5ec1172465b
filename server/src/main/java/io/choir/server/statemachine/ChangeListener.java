package io.choir.server.statemachine;

import java.util.List;

/**
 * ChangeListener hears what {@link KvStateMachine} applied, for the watches ({@code
 * io.choir.server.watch.WatchHub}). Called on the apply thread, after the state it reports is
 * published, so it must not block; an exception it throws is logged and otherwise ignored (it never
 * stops the apply).
 */
public interface ChangeListener {
  /**
   * Entries up to applied were applied, making changes (in revision order; empty when the entries
   * changed no key).
   */
  void applied(List<Change> changes, long applied);

  /**
   * The state was replaced (a state transfer installed, or the state loaded from storage) and is now
   * the one at applied: the changes up to it are not known one by one.
   */
  void replaced(long applied);
}
