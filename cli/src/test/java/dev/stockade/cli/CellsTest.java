package dev.stockade.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.StringReader;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Splitting percent-format notebooks, and how the repl groups typed lines into cells. */
class CellsTest {

    @Test
    void percentMarkersSplitCellsAndMarkdownAndBlankCellsAreSkipped() {
        String nb = """
                import pandas as pd
                # %%
                x = 1

                x + 1


                # %% [markdown]
                # # A title
                #%% second marker style
                print(x)
                # %%

                """;
        assertEquals(List.of("import pandas as pd\n", "x = 1\n\nx + 1\n", "print(x)\n"), Cells.split(nb));
        assertEquals(List.of("print(1)\n"), Cells.split("print(1)"), "a file without markers is one cell");
        assertEquals(List.of(), Cells.split("# %%\n\n# %% [md]\nnot code\n"));
        assertEquals(List.of("a = 1\n", "b = 2\n"), Cells.split("a = 1\r\n# %%\r\nb = 2\r\n"));
    }

    @Test
    void completenessFollowsPythonsPrompt() {
        assertEquals(ReplCommand.Completeness.COMPLETE, ReplCommand.completeness("x = 1\n"));
        assertEquals(ReplCommand.Completeness.COMPLETE, ReplCommand.completeness("print('a:')\n"));
        assertEquals(ReplCommand.Completeness.COMPLETE, ReplCommand.completeness("x = {'a': 1}  # note:\n"));
        assertEquals(ReplCommand.Completeness.BLOCK, ReplCommand.completeness("for i in range(3):\n"));
        assertEquals(ReplCommand.Completeness.BLOCK, ReplCommand.completeness("def f(x):  # a comment\n"));
        assertEquals(ReplCommand.Completeness.BLOCK, ReplCommand.completeness("@decorator\n"));
        assertEquals(ReplCommand.Completeness.OPEN, ReplCommand.completeness("x = [1,\n"));
        assertEquals(ReplCommand.Completeness.COMPLETE, ReplCommand.completeness("x = [1,\n 2]\n"));
        assertEquals(ReplCommand.Completeness.OPEN, ReplCommand.completeness("s = '''one\n"));
        assertEquals(ReplCommand.Completeness.COMPLETE, ReplCommand.completeness("s = '''one\ntwo'''\n"));
        assertEquals(ReplCommand.Completeness.OPEN, ReplCommand.completeness("x = 1 + \\\n"));
        assertEquals(ReplCommand.Completeness.COMPLETE, ReplCommand.completeness("s = 'it\\'s ('\n"));
        assertEquals(ReplCommand.Completeness.BLOCK, ReplCommand.completeness("d = {\n 'k': 1}\nif d:\n"));
    }

    @Test
    void theReplReadsStatementsAndBlocksAsCells() throws IOException {
        String typed = "x = 1\n\nfor i in range(2):\n    print(i)\n\ny = (1,\n 2)\nif x:\n    pass\nelse:\n    pass\n";
        BufferedReader in = new BufferedReader(new StringReader(typed));
        TestIo t = new TestIo(Map.of());
        List<String> cells = new ArrayList<>();
        String cell;
        while ((cell = ReplCommand.readCell(in, t.io)) != null) cells.add(cell);
        assertEquals(List.of("x = 1\n", "", "for i in range(2):\n    print(i)\n", "y = (1,\n 2)\n",
                "if x:\n    pass\nelse:\n    pass\n"), cells);
        assertNull(ReplCommand.readCell(new BufferedReader(new StringReader("")), t.io));
        assertEquals(">>> >>> >>> ... ... >>> ... >>> ... ... ... ... >>> >>> ", t.err(), "the last prompt is the empty reader's");
    }
}
