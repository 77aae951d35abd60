namespace Btrfs.Commands
{
    using System.Management.Automation;
    using Btrfs.Core;
    using Btrfs.Kernel;

    /// <summary>ConvertFrom-NoCow: rewrites NOCOW files into new COW files (checksummed, compressible) and puts them in place atomically.</summary>
    [Cmdlet(VerbsData.ConvertFrom, "NoCow", DefaultParameterSetName = LiteralPathSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High, HelpUri = HelpLinks.Pages + "ConvertFrom-NoCow.md")]
    [OutputType(typeof(NoCowStatus))]
    public sealed class ConvertFromNoCowCommand : NoCowConversionCommandBase
    {
        /// <inheritdoc/>
        private protected override bool ToNoCow => false;
    }
}
