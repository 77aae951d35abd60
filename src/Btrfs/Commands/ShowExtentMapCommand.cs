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
        private ExtentPicture? piped;
        private bool drawn;

        /// <summary>Extents from Get-BtrfsExtent, drawn per file as they arrive.</summary>
        [Parameter(ParameterSetName = InputObjectSet, Mandatory = true, ValueFromPipeline = true)]
        public FileExtent[] InputObject { get; set; } = Array.Empty<FileExtent>();

        /// <summary>Cells per row (default: the window width, 80 when unknown).</summary>
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
                        piped = new ExtentPicture(extent.Path, st.Size, extent.FileSystem, CellsPerRow(), Rows);
                    }
                    catch (FileOperationException ex)
                    {
                        WriteError(ErrorRecords.From(ex));
                        continue;
                    }
                }

                piped.Add(extent);
            }
        }

        /// <inheritdoc/>
        protected override void EndProcessing()
        {
            Flush();
            if (drawn)
            {
                foreach (ExtentMapLine line in ExtentPicture.Legend())
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
            foreach (ExtentMapLine line in picture.Render())
            {
                WriteObject(line);
            }

            drawn = true;
        }

        private int CellsPerRow()
        {
            if (Width > 0)
            {
                return Width;
            }

            try
            {
                int w = Host.UI.RawUI?.WindowSize.Width ?? 0;
                return w >= 8 ? w : 80;
            }
            catch (Exception ex) when (ex is NotImplementedException or NotSupportedException or System.IO.IOException or PSNotImplementedException or System.Management.Automation.Host.HostException)
            {
                return 80;
            }
        }
    }
}
