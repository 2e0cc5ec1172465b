package io.choir.client;

/**
 * WatchListener receives a watch's events, in revision order, each once, on the watch's own thread
 * (one thread per watch: a slow listener slows only its watch; its events then wait on the replica,
 * which the watch resumes from). An exception it throws is logged and the watch goes on with the next
 * event.
 */
public interface WatchListener {
  /**
   * One change.
   *
   * @param event the change
   */
  void onEvent(WatchEvent event);

  /**
   * The watch ended for good (called at most once, never after {@link Watch#close()}): its start
   * revision is no longer kept ({@link WatchCompactedException}), its identity may not read the key
   * ({@link PermissionDeniedException}), the request is invalid ({@link InvalidRequestException}) or a
   * replica's bound on watches refused it ({@link BusyException}). The default does nothing.
   *
   * @param error why
   */
  default void onError(ChoirException error) {}
}
