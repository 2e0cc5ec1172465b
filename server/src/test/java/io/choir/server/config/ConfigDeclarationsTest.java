package io.choir.server.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The declarations' contract: ranges are what the parser accepts, defaults parse back, test-only ones apart. */
class ConfigDeclarationsTest {
  @TempDir Path dir;

  @Test
  void shouldAcceptEveryWholeNumberSettingAtItsBoundsAndRefuseJustOutsideNamingIt() {
    for (Setting<?> s : ServerConfig.settings().values()) {
      if (!(s.range() instanceof Range.Whole r)) {
        continue;
      }
      assertEquals(r.min(), s.parse(r.min()), s.key());
      assertEquals(r.max(), s.parse(String.valueOf(r.max())), s.key());
      ConfigException below = assertThrows(ConfigException.class, () -> s.parse((long) r.min() - 1), s.key());
      assertEquals(s.key(), below.key());
      ConfigException above = assertThrows(ConfigException.class, () -> s.parse((long) r.max() + 1), s.key());
      assertTrue(above.getMessage().contains("outside"), above.getMessage());
      if (r.zeroMeans() != null) {
        assertEquals(0, s.parse("0"), s.key());
        assertTrue(below.getMessage().contains("neither 0 (" + r.zeroMeans() + ")"), below.getMessage());
      }
    }
  }

  @Test
  void shouldAcceptExactlyTheListedWordsOfAChoiceInAnyCase() {
    for (Setting<?> s : ServerConfig.settings().values()) {
      if (!(s.range() instanceof Range.OneOf r)) {
        continue;
      }
      for (String word : r.values()) {
        assertEquals(word, s.show(s.parse(word.toUpperCase(Locale.ROOT))), s.key());
      }
      ConfigException e = assertThrows(ConfigException.class, () -> s.parse("nosuchword"), s.key());
      assertEquals(s.key(), e.key());
      assertTrue(e.getMessage().contains(r.values().toString()), e.getMessage());
    }
  }

  @Test
  void shouldParseEveryDefaultBackFromHowItIsShown() {
    for (Setting<?> s : ServerConfig.settings().values()) {
      assertEquals(s.defaultValue(), s.parse(s.show(s.defaultValue())), s.key());
    }
  }

  @Test
  void shouldKeepTestOnlySettingsApartAndNamedSo() {
    List<Setting<?>> testOnly = new ArrayList<>();
    boolean seenTestOnly = false;
    for (Setting<?> s : ServerConfig.settings().values()) {
      assertEquals(s.key().startsWith("test_"), s.testOnly(), s.key());
      assertFalse(seenTestOnly && !s.testOnly(), s.key() + ": production settings come before test-only ones");
      seenTestOnly |= s.testOnly();
      if (s.testOnly()) {
        testOnly.add(s);
        assertTrue(s.description().startsWith("TEST ONLY"), s.key());
      }
    }
    assertEquals(TestSettings.ALL, testOnly, "every test-only setting is declared in TestSettings");
  }

  @Test
  void shouldMarkTestOnlySettingsInPrintConfigAfterTheProductionOnes() {
    ServerConfig c = ServerConfig.build(Map.of("data_dir", dir.toString()), Map.of());
    List<String> keys = new ArrayList<>(c.asMap().keySet());
    assertEquals(ServerConfig.settings().size(), keys.size());
    assertEquals("test_break_protocol", keys.get(keys.size() - TestSettings.ALL.size()));
    assertEquals("off  # TEST ONLY", c.asMap().get("test_break_protocol"));
    assertEquals("\"\"  # TEST ONLY", c.asMap().get("test_fault_file"));
    assertEquals(1400, c.asMap().get("max_datagram_bytes"), "production values print as before");
    assertEquals("fsync", c.asMap().get("durability"));
  }

  @Test
  void shouldGiveEveryNumberAUnitOrACountInItsName() {
    for (Setting<?> s : ServerConfig.settings().values()) {
      String k = s.key();
      Unit expected = k.endsWith("_ms") ? Unit.MILLISECONDS : k.endsWith("_per_sec") ? Unit.BYTES_PER_SECOND
          : k.endsWith("_bytes") || k.contains("_bytes_") ? Unit.BYTES : k.endsWith("_percent") ? Unit.PERCENT
          : k.endsWith("_ppm") ? Unit.PARTS_PER_MILLION : Unit.NONE;
      assertEquals(expected, s.unit(), k);
    }
  }

  @Test
  void shouldSayTheAcceptedValuesUnitAndDefaultInEveryFlagsHelp() {
    assertEquals("Largest datagram sent; bigger entries are fragmented. (576..65000 bytes; default: 1400)",
        ServerConfig.MAX_DATAGRAM_BYTES.help());
    assertEquals(ServerConfig.CLIENT_AUTH.description() + " (none, optional, require; default: none)",
        ServerConfig.CLIENT_AUTH.help());
    assertTrue(TestSettings.TEST_FAULT_FILE.help().endsWith("(text; default: empty)"),
        TestSettings.TEST_FAULT_FILE.help());
  }
}
