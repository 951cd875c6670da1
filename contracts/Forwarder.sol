// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Forwarder
/// @notice A per-order deposit address. Everything it holds can only go to its payout address
///         (or, on the payout's own request, wherever the payout says). No owner, no upgrade.
/// @dev Used through EIP-1167 clones made by ForwarderFactory. The implementation is created by
///      the factory's constructor, so `factory` (an immutable, hence part of the code that every
///      clone runs) is the factory, and only the factory can initialise a clone. The
///      implementation marks itself initialised in its constructor so it can never be initialised.
///      `token == address(0)` means the chain's native coin everywhere.
contract Forwarder {
    address public immutable factory;

    /// @notice Where every flush sends funds. Set once by the factory.
    address public payout;
    bool private initialised;

    event Flushed(address indexed token, address indexed to, uint256 amount);

    error NotFactory();
    error AlreadyInitialised();
    error NotInitialised();
    error NotPayout();
    error ZeroAddress();
    error NothingToFlush(address token);
    error NotAToken(address token);
    error TransferFailed(address token);
    error BalanceNotReduced(address token);

    constructor() {
        factory = msg.sender;
        initialised = true; // the implementation itself is never usable
    }

    /// @notice Only accepts native coin; forwarding happens in flushNative().
    receive() external payable {}

    /// @notice Sets the payout address. Called by the factory in the same call that creates the
    ///         clone, so no one can initialise a clone first.
    function init(address payout_) external {
        if (msg.sender != factory) revert NotFactory();
        if (initialised) revert AlreadyInitialised();
        if (payout_ == address(0)) revert ZeroAddress();
        initialised = true;
        payout = payout_;
    }

    /// @notice Moves the whole balance of `token` (address(0): native coin) to the payout address.
    ///         Anyone may call it. Returns the amount that left this contract.
    function flush(address token) external returns (uint256) {
        return _flush(token, _payout());
    }

    /// @notice Moves the whole native balance to the payout address. Anyone may call it.
    function flushNative() external returns (uint256) {
        return _flush(address(0), _payout());
    }

    /// @notice Rescue for when the payout address cannot receive (e.g. it is blacklisted by the
    ///         token): only the payout address may send the balance elsewhere.
    function flushTo(address token, address to) external returns (uint256) {
        if (msg.sender != _payout()) revert NotPayout();
        if (to == address(0)) revert ZeroAddress();
        return _flush(token, to);
    }

    function _payout() private view returns (address p) {
        p = payout;
        if (p == address(0)) revert NotInitialised();
    }

    function _flush(address token, address to) private returns (uint256 sent) {
        if (token == address(0)) {
            sent = address(this).balance;
            if (sent == 0) revert NothingToFlush(token);
            (bool ok, bytes memory reason) = to.call{value: sent}("");
            if (!ok) _bubble(reason, token);
        } else {
            uint256 before = _balanceOf(token);
            if (before == 0) revert NothingToFlush(token);
            (bool ok, bytes memory ret) = token.call(abi.encodeWithSelector(0xa9059cbb, to, before));
            if (!ok) _bubble(ret, token);
            // Success means: returned true, or returned nothing from an address that has code
            // (USDT on Ethereum returns nothing).
            if (ret.length == 0) {
                if (token.code.length == 0) revert NotAToken(token);
            } else if (ret.length < 32 || abi.decode(ret, (uint256)) != 1) {
                revert TransferFailed(token);
            }
            uint256 afterwards = _balanceOf(token);
            if (afterwards >= before) revert BalanceNotReduced(token);
            sent = before - afterwards;
        }
        emit Flushed(token, to, sent);
    }

    function _balanceOf(address token) private view returns (uint256) {
        (bool ok, bytes memory ret) =
            token.staticcall(abi.encodeWithSelector(0x70a08231, address(this)));
        if (!ok || ret.length < 32) revert NotAToken(token);
        return abi.decode(ret, (uint256));
    }

    /// @dev Re-raises the callee's revert data so a sweeper can tell "paused" from "blacklisted".
    function _bubble(bytes memory reason, address token) private pure {
        if (reason.length == 0) revert TransferFailed(token);
        assembly ("memory-safe") {
            revert(add(reason, 32), mload(reason))
        }
    }
}
