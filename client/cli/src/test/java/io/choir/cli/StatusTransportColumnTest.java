package io.choir.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The TRANSPORT column of {@code choir status}: the mode, and with auto the peers reached by multicast. */
class StatusTransportColumnTest {
  @Test
  void shouldShowTheModeAndTheMulticastPeersOfAuto() {
    assertEquals("unicast", StatusCommand.transport(Map.of("peer_transport", "unicast")));
    assertEquals("multicast", StatusCommand.transport(Map.of("peer_transport", "multicast")));
    assertEquals("auto mc=2,3", StatusCommand.transport(Map.of("peer_transport", "auto",
        "multicast_peers", List.of(2, 3))));
    assertEquals("auto mc=-", StatusCommand.transport(Map.of("peer_transport", "auto",
        "multicast_peers", List.of())));
    assertEquals("-", StatusCommand.transport(Map.of("peer_transport", "")), "a single replica");
  }
}
