package io.choir.server.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * README.md's settings table is the declarations' (names, defaults, accepted values, units, meanings).
 * With -Dchoir.readme.write=true this test rewrites the table from the declarations instead of failing.
 */
class ConfigReadmeTableTest {
  @Test
  void shouldHaveTheReadmeSettingsTableMatchTheDeclarations() throws Exception {
    Path readme = readme();
    String text = Files.readString(readme, StandardCharsets.UTF_8);
    int begin = text.indexOf(SettingsTable.BEGIN);
    int end = text.indexOf(SettingsTable.END);
    assertTrue(begin >= 0 && end > begin, readme + " has no " + SettingsTable.BEGIN + " ... " + SettingsTable.END);
    int from = text.indexOf("\n", text.indexOf("-->", begin)) + 1;
    String generated = SettingsTable.markdown();
    if (Boolean.getBoolean("choir.readme.write")) {
      Files.writeString(readme, text.substring(0, from) + generated + text.substring(end), StandardCharsets.UTF_8);
      return;
    }
    String inReadme = text.substring(from, end);
    String[] want = generated.split("\n", -1);
    String[] have = inReadme.split("\n", -1);
    for (int i = 0; i < Math.min(want.length, have.length); i++) {
      assertEquals(want[i], have[i], "README.md's settings table differs from the declarations at its line " + (i + 1)
          + "; regenerate it as the comment above it says");
    }
    assertEquals(want.length, have.length, "README.md's settings table has another number of lines than the"
        + " declarations; regenerate it as the comment above it says");
  }

  @Test
  void shouldListEverySettingOnceInTheTable() {
    String table = SettingsTable.markdown();
    for (Setting<?> s : ServerConfig.settings().values()) {
      String row = "| `" + s.key() + "` |";
      assertEquals(table.indexOf(row), table.lastIndexOf(row), s.key());
      assertTrue(table.contains(row), s.key());
    }
  }

  private static Path readme() {
    for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
      Path p = dir.resolve("README.md");
      if (Files.isRegularFile(p) && Files.isDirectory(dir.resolve("server"))) {
        return p;
      }
    }
    throw new IllegalStateException("no README.md above " + Path.of("").toAbsolutePath());
  }
}
