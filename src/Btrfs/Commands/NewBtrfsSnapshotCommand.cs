namespace Btrfs.Commands
{
    using System;
    using System.Management.Automation;
    using Btrfs.Core;
    using Btrfs.Kernel;

    /// <summary>New-BtrfsSnapshot: a snapshot of a subvolume (SNAP_CREATE_V2), read-only with -ReadOnly.</summary>
    [Cmdlet(VerbsCommon.New, "BtrfsSnapshot", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low, HelpUri = HelpLinks.Pages + "New-BtrfsSnapshot.md")]
    [OutputType(typeof(BtrfsSubvolumeInfo))]
    public sealed class NewBtrfsSnapshotCommand : PSCmdlet
    {
        /// <summary>The subvolume to snapshot (its root directory). Binds the Path of piped Get-BtrfsSubvolume objects.</summary>
        [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
        [ValidateNotNullOrEmpty]
        public string Path { get; set; } = string.Empty;

        /// <summary>The snapshot's path: a name that does not exist yet, in a directory of the same filesystem.</summary>
        [Parameter(Mandatory = true, Position = 1)]
        [ValidateNotNullOrEmpty]
        public string Destination { get; set; } = string.Empty;

        /// <summary>Make the snapshot read-only (what backups and btrfs send need).</summary>
        [Parameter]
        public SwitchParameter ReadOnly { get; set; }

        /// <inheritdoc/>
        protected override void ProcessRecord()
        {
            string source, destination;
            try
            {
                source = FileSystemPath(Path);
                destination = FileSystemPath(Destination);
            }
            catch (Exception ex) when (ex is ProviderNotFoundException or DriveNotFoundException or NotSupportedException or PSArgumentException or ArgumentException)
            {
                WriteError(ErrorRecords.FromResolution(Path, ex));
                return;
            }

            if (!ShouldProcess(destination, $"Create a {(ReadOnly.IsPresent ? "read-only" : "writable")} snapshot of '{source}'"))
            {
                return;
            }

            try
            {
                WriteObject(SubvolumeCreator.Snapshot(source, destination, ReadOnly.IsPresent));
            }
            catch (FileOperationException ex)
            {
                WriteError(ErrorRecords.From(ex));
            }
        }

        private string FileSystemPath(string given)
        {
            string path = SessionState.Path.GetUnresolvedProviderPathFromPSPath(given, out ProviderInfo provider, out _);
            return provider.Name == "FileSystem" ? path : throw new NotSupportedException($"Cannot use '{given}': it belongs to the {provider.Name} provider, not to the file system. Pass a file system path.");
        }
    }
}
