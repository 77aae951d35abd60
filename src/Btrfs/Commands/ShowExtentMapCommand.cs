namespace Btrfs.Commands
{
    using System;
    using System.Management.Automation;
    using Btrfs.Core;
    using Btrfs.Kernel;

    /// <summary>
    /// Show-ExtentMap: draws a file's layout as rows of cells (shaded by how many extents fall into
    /// each, with shared, compressed and unwritten cells marked on the line below, and holes) under a
    /// path and a summary line, and a legend once at the end; one object per line (plain text, coloured
    /// by the view where $PSStyle.OutputRendering allows).
    /// </summary>
    [Cmdlet(VerbsCommon.Show, "ExtentMap", DefaultParameterSetName = LiteralPathSet, HelpUri = HelpLinks.Pages + "Show-ExtentMap.md")]
    [OutputType(typeof(ExtentMapLine))]
    public sealed class ShowExtentMapCommand : FileCmdletBase
    {
        private const string InputObjectSet = "InputObject";
        private readonly System.Collections.Generic.HashSet<string> pipedPaths = new(StringComparer.Ordinal);
        private ExtentPicture? piped;
        private long pipedEnd;
        private bool pipedOutOfOrder;
        private bool drawn;

        /// <summary>Extents from Get-BtrfsExtent (or read back by Import-Clixml or remoting), drawn per file as they arrive.</summary>
        [Parameter(ParameterSetName = InputObjectSet, Mandatory = true, ValueFromPipeline = true)]
        [SavedExtent]
        public FileExtent[] InputObject { get; set; } = Array.Empty<FileExtent>();

        /// <summary>Cells per row (default: one less than the window width, so a row never wraps, at least 8; 79 when unknown).</summary>
        [Parameter]
        [ValidateRange(8, 1000)]
        public int Width { get; set; }

        /// <summary>Rows of cells (default 8).</summary>
        [Parameter]
        [ValidateRange(1, 1000)]
        public int Rows { get; set; } = 8;

        /// <inheritdoc/>
        protected override void ProcessRecord()
        {
            if (ParameterSetName != InputObjectSet)
            {
                base.ProcessRecord();
                return;
            }

            foreach (FileExtent extent in InputObject)
            {
                if (piped is null || piped.Path != extent.Path)
                {
                    Flush();
                    try
                    {
                        FileStatus st = FileStatus.OfPath(extent.Path, followLinks: true)
                            ?? throw new FileOperationException(FileErrorKind.NotFound, 0, "stat", extent.Path, $"Cannot draw '{extent.Path}': it no longer exists.");
                        if (!st.IsRegular)
                        {
                            // As Get-BtrfsExtentOwner and Test-NoCow say of such saved objects (before: an empty map, "0 B in 1 extent". A hostile test).
                            throw new FileOperationException(FileErrorKind.NotRegularFile, 0, "stat", extent.Path, $"Cannot draw '{extent.Path}': it is {OpenFile.DescribeType(st.Mode)} now, not the regular file its extents were read from.");
                        }

                        piped = new ExtentPicture(extent.Path, st.Size, extent.FileSystem, CellsPerRow(), Rows);
                        pipedEnd = 0;
                        pipedOutOfOrder = false;
                        if (!pipedPaths.Add(extent.Path))
                        {
                            WriteWarning($"The extents of '{extent.Path}' arrive again after another file's: it is drawn again from only the extents that follow. Pipe each file's extents together, as Get-BtrfsExtent writes them (Sort-Object Path, LogicalOffset puts them back).");
                        }
                    }
                    catch (FileOperationException ex)
                    {
                        WriteError(ErrorRecords.From(ex));
                        continue;
                    }
                }

                if (extent.LogicalOffset < pipedEnd && !pipedOutOfOrder)
                {
                    pipedOutOfOrder = true;
                    WriteWarning($"The extents of '{extent.Path}' arrive out of file order: the cells are drawn right, but the summary's fragment count (extents not next to each other on disk) may be wrong. Pipe them in file order (Sort-Object LogicalOffset).");
                }

                pipedEnd = Math.Max(pipedEnd, extent.EndOffset);
                piped.Add(extent);
            }
        }

        /// <inheritdoc/>
        protected override void EndProcessing()
        {
            Flush();
            if (drawn)
            {
                foreach (ExtentMapLine line in ExtentPicture.Legend(WindowWidth()))
                {
                    WriteObject(line);
                }
            }
        }

        /// <inheritdoc/>
        protected override void ProcessFile(string path)
        {
            using OpenFile file = OpenFile.OpenRead(path);
            var picture = new ExtentPicture(file.Path, file.Size, file.FileSystem.Kind, CellsPerRow(), Rows);
            foreach (FileExtent e in ExtentMap.Read(file, new ExtentQuery()))
            {
                StopToken.ThrowIfCancellationRequested();
                picture.Add(e);
            }

            Write(picture);
        }

        private void Flush()
        {
            if (piped is not null)
            {
                Write(piped);
                piped = null;
            }
        }

        private void Write(ExtentPicture picture)
        {
            foreach (ExtentMapLine line in picture.Render(WindowWidth()))
            {
                WriteObject(line);
            }

            drawn = true;
        }

        private int CellsPerRow() => Width > 0 ? Width : WindowWidth();

        /// <summary>The window's width less one column (79 when none is known): what a line may take.</summary>
        private int WindowWidth()
        {
            try
            {
                // A line as wide as the window makes many terminals wrap before the next one: one column is kept free.
                // A window narrower than the least width gets the least width (8), not 79: a window of 0 is none known.
                int w = Host.UI.RawUI?.WindowSize.Width ?? 0;
                return w <= 0 ? 79 : Math.Max(8, w - 1);
            }
            catch (Exception ex) when (ex is NotImplementedException or NotSupportedException or System.IO.IOException or PSNotImplementedException or System.Management.Automation.Host.HostException)
            {
                return 79;
            }
        }
    }
}
