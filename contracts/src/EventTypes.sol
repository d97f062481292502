// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

// Most ticket tiers an event may have.
uint256 constant MAX_TIERS = 8;
// Most revenue-split parties: the originator and up to 8 stakeholders.
uint256 constant MAX_SPLITS = 9;
// Most steps in a discount schedule.
uint256 constant MAX_DISCOUNTS = 4;

/// @notice Configuration an issuer gives when creating an event (claims 7, 15, 16, 20).
/// Everything here is fixed once the event exists: fans can rely on the rules they saw.
struct EventConfig {
    string name;
    string venue;
    /// Base of the ERC-721 metadata URI; tokenURI(id) is baseURI followed by the decimal id.
    string baseURI;
    uint40 startsAt;
    uint40 doorsOpenAt;
    /// The ERC-20 the event is priced in, or address(0) for the chain's native coin.
    address currency;
    /// Source of buyer categories (claims 17-19); address(0) puts every buyer in UNCLASSIFIED.
    address categoryRegistry;
    TierConfig[] tiers;
    Rules rules;
    /// splits[0] is the originator (issuer's payee); the rest are stakeholders. Sum of bps is 10000.
    Split[] splits;
    address[] gates;
}

struct TierConfig {
    string name;
    uint88 faceValue;
    uint32 supply;
}

/// @notice The sale and resale rules of claim 16.
struct Rules {
    /// Most tickets one account may acquire, counting primary purchases, resales and gifts.
    uint16 maxPerBuyer;
    /// Highest resale price as a markup over face value, in basis points.
    uint16 maxResaleMarkupBps;
    /// Share of the resale markup that the seller keeps, in basis points.
    uint16 sellerMarkupShareBps;
    bool giftsAllowed;
    /// No ticket is sold, resold or gifted at or after this time, so door snapshots are final.
    uint40 resaleClosesAt;
    /// Lowest allowed price over time: from each `from`, price >= face * (1 - maxDiscountBps).
    Discount[] discounts;
    /// Share of total supply that buyers of each category may hold, in basis points.
    uint16[5] categoryQuotaBps;
    /// Presale windows (claim 19): before `presaleEndsAt` only fans and superfans of the
    /// event's artist may buy new tickets, and before `superfanPresaleEndsAt` only superfans.
    /// 0 = no presale.
    uint40 presaleEndsAt;
    uint40 superfanPresaleEndsAt;
}

struct Discount {
    uint40 from;
    uint16 maxDiscountBps;
}

struct Split {
    address account;
    uint16 bps;
    uint8 role;
}

/// @notice Buyer categories (claim 18). The numbering is part of the on-chain interface.
library Category {
    uint8 internal constant UNCLASSIFIED = 0;
    uint8 internal constant FAN = 1;
    uint8 internal constant SUPERFAN = 2;
    uint8 internal constant SCALPER = 3;
    uint8 internal constant BOT = 4;
    uint8 internal constant COUNT = 5;
}

/// @notice Roles of revenue-split parties (claim 22); informational, shown to fans.
library Role {
    uint8 internal constant ORIGINATOR = 0;
    uint8 internal constant ARTIST = 1;
    uint8 internal constant PROMOTER = 2;
    uint8 internal constant VENUE = 3;
    uint8 internal constant OTHER = 4;
}

/// @notice Where an event's contract learns a buyer's category.
interface ICategoryRegistry {
    /// @notice The category of `buyer` for the calling event contract (msg.sender).
    function categoryOf(address buyer) external view returns (uint8);
}

/// @notice One card purchase as the oracle network reports it captured: the fields of the
/// buyer's `EventTicket.requestPurchase` (or `requestResale`), whose request id commits to them.
struct CardPurchase {
    bytes32 requestId;
    bytes32 paymentId;
    address buyer;
    /// The tier of a primary purchase, or the token id of a resale.
    uint256 tier;
    /// Tickets bought; 0 marks a resale of the one listed token `tier`.
    uint256 quantity;
    /// Total price: unit price × quantity as quoted by requestPurchase, or the listing price.
    uint256 amount;
}
