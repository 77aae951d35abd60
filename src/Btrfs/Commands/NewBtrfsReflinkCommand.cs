namespace Btrfs.Commands
{
    using System;
    using System.Collections.Generic;
    using System.IO;
    using System.Management.Automation;
    using Btrfs.Core;
    using Btrfs.Kernel;

    /// <summary>New-BtrfsReflink: instant copies that share extents, made so they succeed where they can and explained where they cannot.</summary>
    [Cmdlet(VerbsCommon.New, "BtrfsReflink", DefaultParameterSetName = LiteralPathSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium, HelpUri = HelpLinks.Pages + "New-BtrfsReflink.md")]
    [OutputType(typeof(ReflinkResult))]
    public sealed class NewBtrfsReflinkCommand : RecursiveFileCmdletBase, IDisposable
    {
        private ProgressBars? bars;
        private long totalBytes;
        private long doneBytes;
        private bool mirroring;
        private readonly ReflinkSession session = new();

        /// <summary>The new file, or an existing directory to copy into.</summary>
        [Parameter(Mandatory = true, Position = 1)]
        [ValidateNotNullOrEmpty]
        public string Destination { get; set; } = string.Empty;

        /// <summary>Replace an existing destination (or write a range into it); never one in use.</summary>
        [Parameter]
        public SwitchParameter Force { get; set; }

        /// <summary>With -Force: where no write lease can prove that nobody has the destination open, rely on the /proc scan alone.</summary>
        [Parameter]
        public SwitchParameter AssumeNotInUse { get; set; }

        /// <summary>What to do when a reflink is impossible: None (an error) or Copy (copy the data, like cp --reflink=auto).</summary>
        [Parameter]
        public ReflinkFallback Fallback { get; set; } = ReflinkFallback.None;

        /// <summary>First byte of the source range to clone (FICLONERANGE).</summary>
        [Parameter]
        [ValidateRange(0, long.MaxValue)]
        public long SourceOffset { get; set; }

        /// <summary>Bytes of the range; default to the source's end.</summary>
        [Parameter]
        [ValidateRange(1, long.MaxValue)]
        public long Length { get; set; }

        /// <summary>Where the range goes in the destination; default the source offset.</summary>
        [Parameter]
        [ValidateRange(0, long.MaxValue)]
        public long DestinationOffset { get; set; }



        /// <summary>Keep mode, owner, group and timestamps (like cp -p).</summary>
        [Parameter]
        public SwitchParameter Preserve { get; set; }

        private ReflinkOptions Options { get; set; } = new();

        private string DestinationPath { get; set; } = string.Empty;

        /// <inheritdoc/>
        protected override void BeginProcessing()
        {
            Options = new ReflinkOptions
            {
                Force = Force.IsPresent,
                AssumeNotInUse = AssumeNotInUse.IsPresent,
                Fallback = Fallback,
                SourceOffset = Bound(nameof(SourceOffset)) ? SourceOffset : null,
                Length = Bound(nameof(Length)) ? Length : null,
                DestinationOffset = Bound(nameof(DestinationOffset)) ? DestinationOffset : null,
                Preserve = Preserve.IsPresent,
            };
            if (Options.IsRange && Recursing)
            {
                ThrowTerminatingError(ErrorRecords.ConflictingParameters("RangeWithRecurse", "-SourceOffset, -Length and -DestinationOffset clone a range of one file; they cannot be combined with -Recurse."));
            }

            DestinationPath = SessionState.Path.GetUnresolvedProviderPathFromPSPath(Destination);
            bars = new ProgressBars(this, "New-BtrfsReflink", 0x5246);
        }

        /// <inheritdoc/>
        protected override void EndProcessing()
        {
            bars?.Complete();
            // One syncfs per destination filesystem, not one fsync per file.
            foreach (FileOperationException failed in session.Flush())
            {
                WriteError(ErrorRecords.From(failed));
            }
        }

        /// <summary>Closes the directories the session kept open, also when the pipeline was stopped.</summary>
        public void Dispose() => session.Dispose();

        /// <inheritdoc/>
        protected override void ProcessFile(string path)
        {
            bool isDirectory = FileStatus.OfPath(path, followLinks: true) is { IsDirectory: true };
            if (!isDirectory)
            {
                string target = Directory.Exists(DestinationPath) ? System.IO.Path.Combine(DestinationPath, System.IO.Path.GetFileName(path.TrimEnd('/'))) : DestinationPath;
                CopyOne(path, target);
                return;
            }

            ThrowIfDirectoryWithoutRecurse(path, Recursing, "clone", "mirror the tree (directories created, files cloned, symbolic links recreated)");
            Mirror(path);
        }

        private bool Bound(string name) => MyInvocation.BoundParameters.ContainsKey(name);

        private void CopyOne(string source, string destination)
        {
            using ReflinkCopy copy = ReflinkCopy.Prepare(source, destination, Options, session);
            Run(copy, source);
        }

        /// <summary>Asks, clones, and only then warns (a warning about a copy that was refused would mislead).</summary>
        private void Run(ReflinkCopy copy, string source)
        {
            string what = copy.Method == ReflinkMethod.Reflink
                ? $"Clone '{source}' ({SizeFormatter.Format(copy.Length)}, {copy.ExtentCount} extents, no data copied)"
                : $"Copy the data of '{source}' ({SizeFormatter.Format(copy.Length)})";
            if (copy.DestinationExists)
            {
                what += Options.IsRange ? " into this existing file" : ", replacing this file";
            }

            if (!ShouldProcess(copy.Destination, what))
            {
                return;
            }

            ReflinkResult result = copy.Run(StopToken);
            foreach (string w in copy.Warnings)
            {
                WriteWarning(w);
            }

            if (mirroring)
            {
                doneBytes += result.Length;
                bars!.Report(doneBytes);
            }

            WriteObject(result);
        }

        private void Mirror(string sourceRoot)
        {
            string root = sourceRoot.Length > 1 ? sourceRoot.TrimEnd('/') : sourceRoot;
            string destRoot = Directory.Exists(DestinationPath) ? System.IO.Path.Combine(DestinationPath, System.IO.Path.GetFileName(root)) : DestinationPath;
            using TreeMirror mirror = TreeMirror.Start(root, destRoot, Options, session, CrossFileSystem.IsPresent, Filter);

            // Bytes first (a listing and an fstatat per file, nothing opened), so progress has a percentage.
            totalBytes = mirror.TotalBytes();
            doneBytes = 0;
            bars!.StartFile(root, totalBytes);
            mirroring = true;
            try
            {
                foreach (MirrorItem item in mirror.Items())
                {
                    StopToken.ThrowIfCancellationRequested();
                    try
                    {
                        MirrorOne(mirror, item);
                    }
                    catch (FileOperationException ex)
                    {
                        WriteError(ErrorRecords.From(ex));
                    }
                }
            }
            finally
            {
                mirroring = false;
                bars.EndFile();
            }
        }

        private void MirrorOne(TreeMirror mirror, MirrorItem item)
        {
            bool ready = item.Parent == MirrorParent.Ready;
            switch (item.Kind)
            {
                case MirrorItemKind.Directory:
                    if (ShouldProcess(item.Target, $"Create the directory (mirror of '{item.Source}')") && ready)
                    {
                        mirror.MakeDirectory(item);
                    }

                    break;
                case MirrorItemKind.File when ready:
                    using (ReflinkCopy copy = mirror.PrepareFile(item))
                    {
                        Run(copy, item.Source);
                    }

                    break;
                case MirrorItemKind.File:
                    ShouldProcess(item.Target, $"Clone '{item.Source}' (its directory is not made)");
                    break;
                case MirrorItemKind.SymbolicLink:
                    if (ShouldProcess(item.Target, $"Create a symbolic link like '{item.Source}'") && ready)
                    {
                        mirror.MakeLink(item, Force.IsPresent);
                    }

                    break;
                case MirrorItemKind.Error:
                    WriteError(ErrorRecords.From(item.Error!));
                    break;
                case MirrorItemKind.Skipped when item.Entry.Kind == WalkEntryKind.OtherFileSystem:
                    WriteVerbose(item.Message!);
                    break;
                default:
                    WriteWarning(item.Message!);
                    break;
            }
        }
    }
}
