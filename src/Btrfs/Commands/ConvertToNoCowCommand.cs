namespace Btrfs.Commands
{
    using System.Management.Automation;
    using Btrfs.Core;

    /// <summary>ConvertTo-NoCow: rewrites files into new NOCOW files and puts them in place atomically.</summary>
    [Cmdlet(VerbsData.ConvertTo, "NoCow", DefaultParameterSetName = PathSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
    [OutputType(typeof(NoCowStatus))]
    public sealed class ConvertToNoCowCommand : NoCowConversionCommandBase
    {
        /// <inheritdoc/>
        private protected override bool ToNoCow => true;
    }
}
