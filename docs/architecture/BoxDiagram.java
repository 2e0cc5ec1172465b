import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import javax.imageio.ImageIO;

/**
 * BoxDiagram draws boxes in rows with arrows between them as a PNG, from a small text file (see
 * modules.boxes for the format), so that docs/architecture.md's pictures come from text sources in the
 * repository. Needs only the JDK (headless AWT):
 *
 * <pre>java -Djava.awt.headless=true docs/architecture/BoxDiagram.java docs/architecture/modules.boxes</pre>
 */
public final class BoxDiagram {
  private static final int BOX_W = 200;
  private static final int BOX_H = 52;
  private static final int GAP_X = 30;
  private static final int GAP_Y = 70;
  private static final int MARGIN = 20;

  private record Box(String id, String title, String subtitle, int row, int col) {}

  public static void main(String[] args) throws IOException {
    Path src = Path.of(args[0]);
    String out = args.length > 1 ? args[1] : src.toString().replaceFirst("\\.[^.]+$", "") + ".png";
    Map<String, Box> boxes = new LinkedHashMap<>();
    List<String[]> edges = new ArrayList<>();
    List<Integer> rowSizes = new ArrayList<>();
    for (String raw : Files.readAllLines(src)) {
      String line = raw.strip();
      if (line.isEmpty() || line.startsWith("#")) {
        continue;
      }
      if (line.equals("row")) {
        rowSizes.add(0);
      } else if (line.startsWith("box ")) {
        String rest = line.substring(4);
        int colon = rest.indexOf(':');
        String[] t = rest.substring(colon + 1).split("\\|", 2);
        int row = rowSizes.size() - 1;
        String id = rest.substring(0, colon).strip();
        boxes.put(id, new Box(id, t[0].strip(), t.length > 1 ? t[1].strip() : "", row, rowSizes.get(row)));
        rowSizes.set(row, rowSizes.get(row) + 1);
      } else {
        String[] e = line.split("->");
        String a = e[0].strip();
        String b = e[1].strip();
        if (!boxes.containsKey(a) || !boxes.containsKey(b)) {
          throw new IllegalArgumentException(src + ": unknown box in \"" + line + "\"");
        }
        edges.add(new String[] {a, b});
      }
    }
    int widest = rowSizes.stream().mapToInt(Integer::intValue).max().orElse(1);
    int width = MARGIN * 2 + widest * BOX_W + (widest - 1) * GAP_X;
    int height = MARGIN * 2 + rowSizes.size() * BOX_H + (rowSizes.size() - 1) * GAP_Y;
    BufferedImage img = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
    Graphics2D g = img.createGraphics();
    g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
    g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
    g.setColor(Color.WHITE);
    g.fillRect(0, 0, width, height);
    Map<String, int[]> at = new LinkedHashMap<>(); // x, y of each box's top left corner
    for (Box b : boxes.values()) {
      int n = rowSizes.get(b.row());
      int rowWidth = n * BOX_W + (n - 1) * GAP_X;
      at.put(b.id(), new int[] {(width - rowWidth) / 2 + b.col() * (BOX_W + GAP_X), MARGIN + b.row() * (BOX_H + GAP_Y)});
    }
    g.setStroke(new BasicStroke(1.2f));
    for (String[] e : edges) {
      int[] a = at.get(e[0]);
      int[] b = at.get(e[1]);
      int x1 = a[0] + BOX_W / 2;
      int y1 = a[1] + BOX_H;
      int x2 = b[0] + BOX_W / 2;
      int y2 = b[1];
      if (boxes.get(e[0]).row() >= boxes.get(e[1]).row()) { // upwards or sideways: from the top
        y1 = a[1];
        y2 = b[1] + BOX_H;
      }
      g.setColor(new Color(0x556677));
      g.drawLine(x1, y1, x2, y2);
      double angle = Math.atan2(y2 - y1, x2 - x1);
      int[] xs = {x2, (int) (x2 - 10 * Math.cos(angle - 0.4)), (int) (x2 - 10 * Math.cos(angle + 0.4))};
      int[] ys = {y2, (int) (y2 - 10 * Math.sin(angle - 0.4)), (int) (y2 - 10 * Math.sin(angle + 0.4))};
      g.fillPolygon(xs, ys, 3);
    }
    for (Box b : boxes.values()) {
      int[] p = at.get(b.id());
      g.setColor(new Color(0xEEF3FB));
      g.fillRoundRect(p[0], p[1], BOX_W, BOX_H, 12, 12);
      g.setColor(new Color(0x5B7DB1));
      g.drawRoundRect(p[0], p[1], BOX_W, BOX_H, 12, 12);
      center(g, b.title(), p[0] + BOX_W / 2, p[1] + 21, new Font(Font.SANS_SERIF, Font.BOLD, 13), new Color(0x222222));
      center(g, b.subtitle(), p[0] + BOX_W / 2, p[1] + 39, new Font(Font.SANS_SERIF, Font.PLAIN, 11), new Color(0x555555));
    }
    g.dispose();
    ImageIO.write(img, "png", new File(out));
    System.out.println("wrote " + out);
  }

  private static void center(Graphics2D g, String s, int cx, int y, Font f, Color c) {
    g.setFont(f);
    g.setColor(c);
    g.drawString(s, cx - g.getFontMetrics().stringWidth(s) / 2, y);
  }
}
