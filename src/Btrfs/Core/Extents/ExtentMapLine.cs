namespace Btrfs.Core
{
    /// <summary>What a line of Show-ExtentMap's picture is.</summary>
    public enum ExtentMapLineKind
    {
        /// <summary>The file's path.</summary>
        File,

        /// <summary>Size, extents, fragments, shared bytes and what one cell stands for.</summary>
        Summary,

        /// <summary>A row of cells, shaded by how many extents fall into each.</summary>
        Cells,

        /// <summary>Under a row of cells: S (shared), Z (compressed), u (unwritten) below the cells they mark.</summary>
        Marks,

        /// <summary>The legend, written once at the end of a call.</summary>
        Legend,
    }

    /// <summary>
    /// One line of Show-ExtentMap's picture. <see cref="Text"/> is the plain text (and what ToString
    /// gives, so Set-Content and -join get plain text); the view colours it, and PowerShell's formatter
    /// drops the colours wherever $PSStyle.OutputRendering says so (a file, a pipe, Out-String).
    /// </summary>
    public sealed class ExtentMapLine
    {
        internal ExtentMapLine(string? path, ExtentMapLineKind kind, int row, string text, string marks)
        {
            Path = path;
            Kind = kind;
            Row = row;
            Text = text;
            Marks = marks;
        }

        /// <summary>The file drawn; null for the legend.</summary>
        public string? Path { get; }

        /// <summary>What this line is.</summary>
        public ExtentMapLineKind Kind { get; }

        /// <summary>For Cells and Marks: the row, from 0; otherwise -1.</summary>
        public int Row { get; }

        /// <summary>The line as plain text.</summary>
        public string Text { get; }

        /// <summary>For Cells: one character per cell, S, Z, X or u where the cell is shared, compressed, both, or unwritten, a space elsewhere (the Marks line under it, even where none was written); otherwise empty.</summary>
        public string Marks { get; }

        /// <inheritdoc/>
        public override string ToString() => Text;
    }
}
