namespace Btrfs.Commands
{
    using System.Management.Automation;
    using Btrfs.Core;
    using Btrfs.Kernel;

    /// <summary>New-BtrfsSnapshot: a snapshot of a subvolume (SNAP_CREATE_V2), read-only with -ReadOnly.</summary>
    [Cmdlet(VerbsCommon.New, "BtrfsSnapshot", DefaultParameterSetName = "LiteralPath", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low, HelpUri = HelpLinks.Pages + "New-BtrfsSnapshot.md")]
    [OutputType(typeof(BtrfsSubvolumeInfo))]
    public sealed class NewBtrfsSnapshotCommand : PSCmdlet
    {
        /// <summary>
        /// The subvolume to snapshot (its root directory), as typed (no wildcards). Bound from piped strings, and from
        /// the Path property of piped objects that have no PSPath (read back from CSV or JSON); a live object binds by
        /// its PSPath.
        /// </summary>
        [Parameter(ParameterSetName = "Path", Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        [ValidateNotNullOrEmpty]
        [PipedPath]
        public string Path { get; set; } = string.Empty;

        /// <summary>
        /// The subvolume to snapshot, used exactly as given. Piped Get-BtrfsSubvolume objects bind here by their
        /// PSPath (provider-qualified), so a name with a backslash or brackets reaches exactly that subvolume.
        /// </summary>
        [Parameter(ParameterSetName = "LiteralPath", Mandatory = true, ValueFromPipelineByPropertyName = true)]
        [Alias("PSPath", "LP")]
        [ValidateNotNullOrEmpty]
        [PipedPath]
        public string LiteralPath { get; set; } = string.Empty;

        /// <summary>
        /// Only if the source is the subvolume with this UUID (bound from a piped object's Uuid: a Guid, or its text
        /// read back from JSON or CSV): a path renamed, replaced (by a symbolic link to another subvolume, too) or
        /// mounted over since the object was made is refused (SubvolumeReplaced); a value that is not a UUID (empty too)
        /// is refused (InvalidArgument), never taken as none.
        /// </summary>
        [Parameter(ParameterSetName = "LiteralPath", ValueFromPipelineByPropertyName = true)]
        [Parameter(ParameterSetName = "Path", ValueFromPipelineByPropertyName = true)]
        public SubvolumeUuid? Uuid { get; set; }

        /// <summary>
        /// The snapshot's path: a name that does not exist yet, in a directory of the same filesystem. With piped
        /// subvolumes, a script block gives each its own: -Destination { "/srv/snapshots/$($_.Name)-nightly" }.
        /// </summary>
        [Parameter(Mandatory = true, Position = 1, ValueFromPipelineByPropertyName = true)]
        [ValidateNotNullOrEmpty]
        public string Destination { get; set; } = string.Empty;

        /// <summary>Make the snapshot read-only (what backups and btrfs send need).</summary>
        [Parameter]
        public SwitchParameter ReadOnly { get; set; }

        /// <inheritdoc/>
        protected override void ProcessRecord()
        {
            if (PathBinding.UnresolvedFileSystemPath(this, ParameterSetName == "Path" ? Path : LiteralPath) is not string source
                || PathBinding.UnresolvedFileSystemPath(this, Destination) is not string destination)
            {
                return;
            }

            try
            {
                // Checked first, so -WhatIf and the prompt are only for a snapshot that can be made.
                using SubvolumeCreator planned = SubvolumeCreator.PlanSnapshot(source, destination, SubvolumeUuid.Named(this, Uuid, "snapshot", source, "Nothing was changed", PipedPathAttribute.UuidOf(ParameterSetName == "Path" ? Path : LiteralPath)));
                if (!Preferences.ShouldProcess(this, planned.Full, $"Create a {(ReadOnly.IsPresent ? "read-only" : "writable")} snapshot of '{source}'"))
                {
                    return;
                }

                WriteObject(planned.Snapshot(ReadOnly.IsPresent));
            }
            catch (FileOperationException ex)
            {
                WriteError(ErrorRecords.From(ex));
            }
        }
    }
}
