// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC721} from "solady/src/tokens/ERC721.sol";
import {ERC2771Context} from "@openzeppelin/contracts/metatx/ERC2771Context.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";
import {
    EventConfig, TierConfig, Rules, Discount, Split, Category, ICategoryRegistry, CardPurchase, MAX_DISCOUNTS
} from "./EventTypes.sol";

interface IOracleHub {
    function register(bytes32 paymentId, bytes32 requestId) external;
}

/// @title EventTicket
/// @notice One live event: its tickets (ERC-721), its sale and resale rules, its revenue splits,
/// its door check-in and its cancellation. Deployed by EventFactory as an ERC-1167 clone.
/// @dev Solady's ERC721 is used rather than OpenZeppelin's because it packs 96 bits of per-token
/// data into the owner word and 224 bits of per-account data into the balance word; the
/// ticket's price paid, buyer category and check-in flag, and the buyer's acquisition count,
/// then cost no extra storage slots (see the gas report in README).
///
/// Every movement of a ticket — mint, sale, resale, gift, refund burn — passes through
/// `_beforeTokenTransfer`, which holds the rules that apply to all of them.
contract EventTicket is ERC721, ERC2771Context, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    // ---------------------------------------------------------------- errors

    error NotFactory(address caller);
    error AlreadyInitialized();
    error NotIssuer(address caller);
    error NotGate(address caller);
    error NotTicketOwner(uint256 tokenId, address caller);
    error UnknownTier(uint256 tier);
    error ZeroQuantity();
    error SoldOut(uint256 tier, uint256 remaining);
    error PriceAboveMax(uint256 price, uint256 maxPrice);
    error PriceOutOfRange(uint256 price, uint256 floor, uint256 cap);
    error IncorrectPayment(uint256 expected, uint256 sent);
    error NativeNotAccepted();
    error BuyerLimitReached(address buyer, uint256 limit);
    error CategoryQuotaReached(uint8 category, uint256 quota);
    error PresaleOnly(uint8 category, uint256 opensAt);
    error InvalidCategory(uint8 category);
    error SalesClosed(uint256 closedAt);
    error GiftsNotAllowed();
    error SelfTransfer();
    error TicketCheckedIn(uint256 tokenId);
    error NotListed(uint256 tokenId);
    error DoorsNotOpen(uint256 doorsOpenAt);
    error EventIsCancelled();
    error EventNotCancelled();
    error RefundsUnderfunded(uint256 owed, uint256 funded);
    error NothingToWithdraw();
    error PaymentFailed(address to, uint256 amount);
    error NotHub(address caller);
    /// A card mint reverted without a reason (out of gas): the whole report reverts so it can
    /// be resubmitted with more gas, rather than turning a good payment into a refund.
    error FulfilmentAborted(bytes32 requestId);

    // ---------------------------------------------------------------- events

    event TierConfigured(uint256 indexed tier, string name, uint256 faceValue, uint256 supply);
    event Purchased(address indexed buyer, uint256 indexed tier, uint256 firstTokenId, uint256 quantity, uint256 unitPrice);
    event Listed(uint256 indexed tokenId, address indexed seller, uint256 price);
    event Unlisted(uint256 indexed tokenId);
    event Resold(uint256 indexed tokenId, address indexed seller, address indexed buyer, uint256 price, uint256 sellerAmount);
    event CheckedIn(uint256 indexed tokenId, address indexed gate);
    /// One event for a whole batch: a log entry per ticket would cost ~900 gas more each.
    event CheckedInBatch(address indexed gate, uint256[] tokenIds);
    event DuplicateCheckIn(uint256 indexed tokenId, address indexed gate);
    event GateSet(address indexed gate, bool allowed);
    event RefundsFunded(address indexed from, uint256 amount);
    event Cancelled(uint256 refundsOwed);
    event Refunded(uint256 indexed tokenId, address indexed holder, uint256 amount);
    event Credited(address indexed account, uint256 amount);
    event Withdrawn(address indexed account, address to, uint256 amount);
    /// @notice A card purchase awaits the oracle network (claim 14 e): `amount` is what the
    /// payment `paymentId` must have captured for `qty` tickets of `tier` for `buyer` (for a
    /// card resale, `qty` is 0 and `tier` is the listed token's id).
    event PurchaseRequested(
        bytes32 indexed requestId, bytes32 indexed paymentId, address indexed buyer, uint256 tier, uint256 qty, uint256 amount
    );
    /// @notice A captured card payment minted its tickets (claim 14 g), or for a resale moved
    /// token `firstTokenId`; a Purchased (or Resold) event with the details precedes it.
    event CardPurchased(bytes32 indexed requestId, bytes32 indexed paymentId, uint256 firstTokenId);
    /// @notice A captured card payment could not mint because a rule failed at mint time
    /// (`reason` is the rule's custom error): the payment is owed a refund.
    event CardPurchaseFailed(bytes32 indexed requestId, bytes32 indexed paymentId, address indexed buyer, bytes reason);
    /// @notice A party's share of card revenue, paid off-chain on the processor's ledger
    /// (claims 20-21); `currency` is "card". One per party per fulfilment report, plus one per
    /// card resale for its seller.
    event RevenueSplit(address indexed party, uint256 amount, bytes32 currency);
    /// @notice A card payment behind the ticket was refunded or charged back: the ticket was
    /// burned, or, if it was checked in or had moved on from the card buyer, marked.
    event CardReversed(uint256 indexed tokenId, bool burned);

    // ---------------------------------------------------------------- layout

    /// @notice Scalar settings, packed into one storage word so a purchase reads them once.
    struct Settings {
        uint16 maxPerBuyer;
        uint16 maxResaleMarkupBps;
        uint16 sellerMarkupShareBps;
        bool giftsAllowed;
        bool cancelled;
        uint8 tierCount;
        uint8 splitCount;
        uint40 startsAt;
        uint40 doorsOpenAt;
        uint40 resaleClosesAt;
        uint32 totalSupply;
    }

    struct Tier {
        uint88 faceValue;
        uint32 supply;
        uint32 sold;
    }

    /// @notice A ticket as the wallet and the scanner see it.
    struct Ticket {
        address owner;
        uint256 tier;
        uint256 paid;
        uint8 category;
        bool checkedIn;
        uint256 listingPrice;
    }

    uint256 internal constant BPS = 10_000;
    /// Gas given to a native-coin push; a recipient needing more is credited instead (pull).
    uint256 internal constant PUSH_GAS = 30_000;

    // Per-token extra data (96 bits, stored in the ERC-721 owner word):
    // bits 0..87 price paid for the ticket, 88..90 buyer category, 94 minted and not burned,
    // 95 checked in. The "minted" bit lets check-in test existence without reading the owner.
    uint256 internal constant PAID_MASK = (1 << 88) - 1;
    uint256 internal constant CATEGORY_SHIFT = 88;
    uint256 internal constant EXISTS = 1 << 94;
    /// Bit 92: minted by card and never moved since; bit 93: its card payment was reversed.
    uint256 internal constant CARD_FRESH = 1 << 92;
    uint256 internal constant REVERSED = 1 << 93;
    uint256 internal constant CHECKED_IN = 1 << 95;

    // Token ids are (tier << 32) | serial, serial counting from 1 within the tier, so the id
    // alone tells the tier and minting needs no global counter.
    uint256 internal constant SERIAL_BITS = 32;

    // The ledger word: five 24-bit counts of live tickets held per buyer category (bits
    // 0..119), then the sum of prices paid for live, not checked-in tickets (bits 120..255):
    // what a cancellation must refund. With total supply below 2^24 and prices below 2^88
    // neither part can overflow into the other.
    uint256 internal constant COUNT_BITS = 24;
    uint256 internal constant COUNT_MASK = (1 << COUNT_BITS) - 1;
    uint256 internal constant OWED_SHIFT = 120;
    uint256 internal constant MAX_TOTAL_SUPPLY = COUNT_MASK;

    /// @notice The factory that deployed this implementation; only it may initialize clones.
    address public immutable FACTORY;
    /// @notice The OracleHub that alone may fulfil and reverse card purchases.
    address public immutable HUB;

    Settings internal _settings;
    address public issuer;
    address public currency;
    /// @notice Presale windows: before presaleEndsAt only fans and superfans of the event's
    /// artist (as the category registry attests) may buy new tickets; before
    /// superfanPresaleEndsAt only superfans. Packed with `currency`, which a sale reads anyway.
    uint40 public presaleEndsAt;
    uint40 public superfanPresaleEndsAt;
    /// Five 16-bit quotas (basis points of total supply), one per category.
    uint80 internal _quotas;
    address public categoryRegistry;
    /// Up to four (from uint40, maxDiscountBps uint16) entries, 56 bits each, ascending.
    uint256 internal _discounts;
    uint256 internal _ledger;
    /// Native coin or ERC-20 held for a cancelled event's refunds.
    uint256 public refundPool;

    mapping(uint256 => Tier) internal _tiers;
    mapping(uint256 => Split) internal _splits;
    mapping(uint256 => uint256) public listingPrice;
    mapping(address => bool) public isGate;
    /// Payouts that could not be pushed; the account withdraws them.
    mapping(address => uint256) public credits;

    string internal _name;
    string public baseURI;

    /// Set only while the marketplace itself moves a ticket, so the gift rule does not apply.
    bool transient _marketMove;

    /// @param trustedForwarder The ERC-2771 forwarder that relays users' signed requests.
    /// @param hub The OracleHub trusted for card fulfilments and reversals.
    constructor(address trustedForwarder, address hub) ERC2771Context(trustedForwarder) {
        FACTORY = msg.sender;
        HUB = hub;
    }

    // ---------------------------------------------------------------- set-up

    /// @notice Writes the event's configuration into a fresh clone.
    /// @dev Only the factory, once. The factory has validated `cfg` (EventFactory._validate);
    /// validating there keeps this contract under the code-size limit.
    function initialize(address issuer_, EventConfig calldata cfg) external {
        if (msg.sender != FACTORY) revert NotFactory(msg.sender);
        if (issuer != address(0)) revert AlreadyInitialized();
        Rules calldata r = cfg.rules;

        uint256 nTiers = cfg.tiers.length;
        uint256 total;
        for (uint256 i; i < nTiers; ++i) {
            TierConfig calldata t = cfg.tiers[i];
            _tiers[i] = Tier({faceValue: t.faceValue, supply: t.supply, sold: 0});
            total += t.supply;
            emit TierConfigured(i, t.name, t.faceValue, t.supply);
        }

        uint256 nSplits = cfg.splits.length;
        for (uint256 i; i < nSplits; ++i) {
            _splits[i] = cfg.splits[i];
        }

        uint256 packed;
        for (uint256 i; i < r.discounts.length; ++i) {
            Discount calldata d = r.discounts[i];
            packed |= (uint256(d.from) | (uint256(d.maxDiscountBps) << 40)) << (56 * i);
        }
        if (packed != 0) _discounts = packed;

        uint256 quotas;
        for (uint256 c; c < Category.COUNT; ++c) {
            quotas |= uint256(r.categoryQuotaBps[c]) << (16 * c);
        }

        _settings = Settings({
            maxPerBuyer: r.maxPerBuyer,
            maxResaleMarkupBps: r.maxResaleMarkupBps,
            sellerMarkupShareBps: r.sellerMarkupShareBps,
            giftsAllowed: r.giftsAllowed,
            cancelled: false,
            tierCount: uint8(nTiers),
            splitCount: uint8(nSplits),
            startsAt: cfg.startsAt,
            doorsOpenAt: cfg.doorsOpenAt,
            resaleClosesAt: r.resaleClosesAt,
            totalSupply: uint32(total)
        });
        issuer = issuer_;
        currency = cfg.currency;
        if (r.presaleEndsAt != 0) (presaleEndsAt, superfanPresaleEndsAt) = (r.presaleEndsAt, r.superfanPresaleEndsAt);
        _quotas = uint80(quotas);
        if (cfg.categoryRegistry != address(0)) categoryRegistry = cfg.categoryRegistry;
        for (uint256 i; i < cfg.gates.length; ++i) {
            isGate[cfg.gates[i]] = true;
            emit GateSet(cfg.gates[i], true);
        }
        _name = cfg.name;
        if (bytes(cfg.baseURI).length != 0) baseURI = cfg.baseURI;
    }

    // ---------------------------------------------------------------- primary sale

    /// @notice Buys `qty` tickets of `tier` at the current primary price (face value less the
    /// scheduled discount), paying in the event's currency: native coin as msg.value (exact),
    /// or the ERC-20 through an allowance given to this contract. The price is split among the
    /// originator and stakeholders and paid out in the same transaction.
    /// @dev Anyone; gasless through the trusted forwarder for ERC-20 events. Reverts with
    /// UnknownTier, ZeroQuantity, SoldOut, PriceAboveMax, IncorrectPayment, BuyerLimitReached,
    /// CategoryQuotaReached, SalesClosed or EventIsCancelled.
    /// @return firstTokenId The id of the first ticket; the rest follow consecutively.
    function buy(uint256 tier, uint256 qty, uint256 maxUnitPrice) external payable nonReentrant returns (uint256 firstTokenId) {
        return _buy(_msgSender(), tier, qty, maxUnitPrice);
    }

    /// @notice As `buy`, for an ERC-20 with EIP-2612 permit: the allowance comes from the
    /// buyer's signed permit, so a fan holding no native coin pays in one forwarded request.
    /// @dev A permit already used (for instance by someone who saw it first) is not an error
    /// as long as the allowance it granted is there.
    function buyWithPermit(uint256 tier, uint256 qty, uint256 maxUnitPrice, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external
        nonReentrant
        returns (uint256 firstTokenId)
    {
        address buyer = _msgSender();
        try IERC20Permit(currency).permit(buyer, address(this), maxUnitPrice * qty, deadline, v, r, s) {} catch {}
        return _buy(buyer, tier, qty, maxUnitPrice);
    }

    function _buy(address buyer, uint256 tier, uint256 qty, uint256 maxUnitPrice) internal returns (uint256 firstId) {
        (uint256 sold, uint256 unitPrice) = _quote(tier, qty);
        if (unitPrice > maxUnitPrice) revert PriceAboveMax(unitPrice, maxUnitPrice);
        uint256 total = unitPrice * qty;

        // Effects: the tier's count, then the tickets (each through the transfer hook).
        firstId = _mintTickets(buyer, tier, sold, qty, unitPrice, EXISTS);

        // Interactions: collect and split the payment.
        _takePayment(buyer, total);
        _payParties(buyer, total);
    }

    /// @dev Checks a tier and quantity can be sold now; returns the tier's count sold and the
    /// primary price.
    function _quote(uint256 tier, uint256 qty) internal view returns (uint256 sold, uint256 unitPrice) {
        if (tier >= _settings.tierCount) revert UnknownTier(tier);
        if (qty == 0) revert ZeroQuantity();
        Tier memory t = _tiers[tier];
        if (qty > t.supply - t.sold) revert SoldOut(tier, t.supply - t.sold);
        return (t.sold, _floorPrice(t.faceValue));
    }

    /// @dev Mints `qty` tickets of `tier` after the `sold` already sold, each through the
    /// transfer hook (sales window, maxPerBuyer, quota), recording `unitPrice` and `flags`.
    function _mintTickets(address buyer, uint256 tier, uint256 sold, uint256 qty, uint256 unitPrice, uint256 flags)
        internal
        returns (uint256 firstId)
    {
        _tiers[tier].sold = uint32(sold + qty);
        firstId = (tier << SERIAL_BITS) | (sold + 1);
        for (uint256 i; i < qty; ++i) {
            uint256 id = firstId + i;
            _mint(buyer, id);
            _setExtraData(id, uint96(_getExtraData(id) | unitPrice | flags));
        }
        _ledger += (unitPrice * qty) << OWED_SHIFT;
        emit Purchased(buyer, tier, firstId, qty, unitPrice);
    }

    // ---------------------------------------------------------------- card purchase (claim 14)

    /// @notice Asks to buy `qty` tickets of `tier` with the card payment `paymentId` (claim 14
    /// d-e): records the request at the current primary price and emits PurchaseRequested, the
    /// message the oracle network verifies against the payment processor. Tickets are minted
    /// when the OracleHub delivers k oracles' report that the payment was captured.
    /// @dev Anyone; gasless through the trusted forwarder. The rules are checked again at mint
    /// time; these early checks only spare a doomed request. Reverts with UnknownTier,
    /// ZeroQuantity, EventIsCancelled, SalesClosed, SoldOut, BuyerLimitReached, or the hub's
    /// PaymentAlreadyUsed (another request already claimed `paymentId`).
    /// @return requestId keccak256(abi.encode(this, paymentId, buyer, tier, qty, amount)).
    function requestPurchase(bytes32 paymentId, uint256 tier, uint256 qty) external nonReentrant returns (bytes32 requestId) {
        (, uint256 unitPrice) = _quote(tier, qty);
        _requireOpen();
        return _request(paymentId, tier, qty, unitPrice * qty);
    }

    /// @notice Asks to buy listed ticket `tokenId` at its listing price with the card payment
    /// `paymentId`: the card path of `buyListed`. Emits PurchaseRequested with quantity 0 and
    /// the token id in place of the tier. When k oracles report the payment captured, the
    /// ticket moves if it is still listed at that price and every rule holds; the seller's part
    /// and the parties' split are emitted as RevenueSplit events (paid by card, off-chain).
    /// @dev Anyone but the owner; gasless through the trusted forwarder. Reverts with
    /// NotListed, PriceOutOfRange, SelfTransfer, EventIsCancelled, SalesClosed,
    /// BuyerLimitReached, or the hub's PaymentAlreadyUsed.
    function requestResale(bytes32 paymentId, uint256 tokenId) external nonReentrant returns (bytes32 requestId) {
        uint256 price = listingPrice[tokenId];
        if (price == 0) revert NotListed(tokenId);
        _checkResalePrice(tokenId, price);
        if (_ownerOf(tokenId) == _msgSender()) revert SelfTransfer();
        _requireOpen();
        return _request(paymentId, tokenId, 0, price);
    }

    /// @dev Records a card request (primary: `qty` of tier `what`; resale: qty 0, token `what`)
    /// with the hub, which lets one request claim `paymentId`, ever.
    function _request(bytes32 paymentId, uint256 what, uint256 qty, uint256 amount) internal returns (bytes32 requestId) {
        address buyer = _msgSender();
        uint256 limit = _settings.maxPerBuyer;
        uint224 aux = _getAux(buyer);
        if (uint32(aux) + (qty == 0 ? 1 : qty) > limit) revert BuyerLimitReached(buyer, limit);
        // A card payment for a purchase the presale refuses would only be refunded.
        if (qty != 0 && block.timestamp < presaleEndsAt) _checkPresale(_categoryOf(buyer));
        // Count the buyer's card requests (bits 32..63 of the account word): this also pays for
        // that storage word now, so the mint the oracles' report brings costs less.
        _setAux(buyer, aux + (1 << 32));
        requestId = keccak256(abi.encode(address(this), paymentId, buyer, what, qty, amount));
        emit PurchaseRequested(requestId, paymentId, buyer, what, qty, amount);
        IOracleHub(HUB).register(paymentId, requestId);
    }

    /// @notice Mints the tickets of card purchases (and moves the tickets of card resales)
    /// whose payments k oracles reported captured (claim 14 f-g). A purchase that breaks a rule at mint time (sold out, maxPerBuyer, quota,
    /// sales closed, cancelled) mints nothing and emits CardPurchaseFailed, so its payment is
    /// refunded; the others go ahead. The revenue of the minted ones is split among the parties
    /// by basis points and emitted as RevenueSplit events, one per party (no tokens move).
    /// @dev The OracleHub only, after verifying the report and that each purchase is the request
    /// registered for its payment id. Reverts with NotHub or FulfilmentAborted.
    /// @return firstIds Per purchase, the first token id minted, or 0 if it failed.
    function fulfilCard(CardPurchase[] calldata purchases) external nonReentrant returns (uint256[] memory firstIds) {
        if (msg.sender != HUB) revert NotHub(msg.sender);
        firstIds = new uint256[](purchases.length);
        uint256 revenue;
        for (uint256 i; i < purchases.length; ++i) {
            CardPurchase calldata p = purchases[i];
            bytes32 rid = p.requestId;
            try this.mintCard(p.buyer, p.tier, p.quantity, p.amount) returns (uint256 first, uint256 toParties) {
                firstIds[i] = first;
                revenue += toParties;
                emit CardPurchased(rid, p.paymentId, first);
            } catch (bytes memory reason) {
                if (reason.length == 0) revert FulfilmentAborted(rid);
                emit CardPurchaseFailed(rid, p.paymentId, p.buyer, reason);
            }
        }
        if (revenue != 0) {
            uint256[] memory parts = splitAmounts(revenue);
            for (uint256 i; i < parts.length; ++i) {
                emit RevenueSplit(_splits[i].account, parts[i], "card");
            }
        }
    }

    /// @dev This contract only (fulfilCard's try): mints one card purchase (or, with `qty` 0,
    /// resells listed token `what`), or reverts with the rule it breaks. Returns the first
    /// token id and what goes to the split parties; a resale's seller part is emitted here.
    function mintCard(address buyer, uint256 what, uint256 qty, uint256 amount)
        external
        returns (uint256 first, uint256 toParties)
    {
        if (msg.sender != address(this)) revert NotHub(msg.sender);
        if (qty == 0) {
            // The listing must still be at the price the buyer paid.
            if (listingPrice[what] != amount) revert NotListed(what);
            (address seller, uint256 sellerAmount) = _resell(buyer, what, amount, CARD_FRESH);
            emit RevenueSplit(seller, sellerAmount, "card");
            return (what, amount - sellerAmount);
        }
        Tier memory t = _tiers[what];
        if (qty > t.supply - t.sold) revert SoldOut(what, t.supply - t.sold);
        return (_mintTickets(buyer, what, t.sold, qty, amount / qty, EXISTS | CARD_FRESH), amount);
    }

    /// @notice Reverses a card purchase whose payment was refunded or charged back: each of
    /// its tickets still held by the card buyer and not checked in is burned; one checked in,
    /// or resold or gifted since, is marked instead (CardReversed with burned = false).
    /// @dev The OracleHub only, after verifying the report. Tickets already burned are skipped.
    function reverseCard(uint256 firstId, uint256 qty) external nonReentrant {
        if (msg.sender != HUB) revert NotHub(msg.sender);
        uint256 released;
        for (uint256 id = firstId; id < firstId + qty; ++id) {
            uint256 extra = _getExtraData(id);
            if (extra & EXISTS == 0) continue;
            if (extra & CHECKED_IN != 0 || extra & CARD_FRESH == 0) {
                _setExtraData(id, uint96(extra | REVERSED));
                emit CardReversed(id, false);
            } else {
                _burn(id);
                released += extra & PAID_MASK;
                emit CardReversed(id, true);
            }
        }
        _ledger -= released << OWED_SHIFT;
    }

    // ---------------------------------------------------------------- resale market

    /// @notice Offers a ticket for resale at `price`, which must lie within the allowed range
    /// [floor, cap] for its tier now: the scheduled discount below face value, and the maximum
    /// markup above it.
    /// @dev The ticket's owner only. Reverts with NotTicketOwner, TicketCheckedIn,
    /// PriceOutOfRange, SalesClosed or EventIsCancelled.
    function list(uint256 tokenId, uint256 price) external nonReentrant {
        address seller = _msgSender();
        if (_ownerOf(tokenId) != seller) revert NotTicketOwner(tokenId, seller);
        if (_getExtraData(tokenId) & CHECKED_IN != 0) revert TicketCheckedIn(tokenId);
        _requireOpen();
        _checkResalePrice(tokenId, price);
        listingPrice[tokenId] = price;
        emit Listed(tokenId, seller, price);
    }

    /// @notice Withdraws a ticket from resale. The ticket's owner only.
    function cancelListing(uint256 tokenId) external nonReentrant {
        address seller = _msgSender();
        if (_ownerOf(tokenId) != seller) revert NotTicketOwner(tokenId, seller);
        if (listingPrice[tokenId] == 0) revert NotListed(tokenId);
        delete listingPrice[tokenId];
        emit Unlisted(tokenId);
    }

    /// @notice Buys a listed ticket. The seller keeps the price less the markup over face value
    /// plus their share of that markup; the rest goes to the originator and stakeholders by
    /// their basis points, all in this transaction.
    /// @dev Anyone but the seller. The price must still lie in the allowed range at the time of
    /// purchase; buyer limits and category quotas apply. Reverts with NotListed, PriceAboveMax,
    /// PriceOutOfRange, IncorrectPayment, BuyerLimitReached, CategoryQuotaReached, SalesClosed,
    /// SelfTransfer or EventIsCancelled.
    function buyListed(uint256 tokenId, uint256 maxPrice) external payable nonReentrant {
        address buyer = _msgSender();
        uint256 price = listingPrice[tokenId];
        if (price == 0) revert NotListed(tokenId);
        if (price > maxPrice) revert PriceAboveMax(price, maxPrice);
        (address seller, uint256 sellerAmount) = _resell(buyer, tokenId, price, 0);

        _takePayment(buyer, price);
        _pay(buyer, seller, sellerAmount);
        _payParties(buyer, price - sellerAmount);
    }

    /// @dev Moves listed `tokenId` from its owner to `buyer` at `price` (checked against the
    /// allowed range now), recording the price and `flags`; returns the seller and their part.
    function _resell(address buyer, uint256 tokenId, uint256 price, uint256 flags)
        internal
        returns (address seller, uint256 sellerAmount)
    {
        uint256 face = _checkResalePrice(tokenId, price);
        seller = _ownerOf(tokenId);

        _marketMove = true;
        _transfer(seller, buyer, tokenId);
        _marketMove = false;
        uint256 extra = _getExtraData(tokenId);
        _setExtraData(tokenId, uint96((extra & ~PAID_MASK) | price | flags));
        _ledger = _ledger + (price << OWED_SHIFT) - ((extra & PAID_MASK) << OWED_SHIFT);

        uint256 markup = price > face ? price - face : 0;
        sellerAmount = price - markup + (markup * _settings.sellerMarkupShareBps) / BPS;
        emit Resold(tokenId, seller, buyer, price, sellerAmount);
    }

    // ---------------------------------------------------------------- gifts (ERC-721 transfers)

    /// @notice ERC-721 transfer, which Stagepass treats as a gift: allowed only when the event
    /// allows gifts, and subject to every rule of `_beforeTokenTransfer`.
    /// @dev Ownership and approval are checked before the event's rules, so a caller who may
    /// not move the ticket is told that, not which rule would have applied.
    function transferFrom(address from, address to, uint256 id) public payable override nonReentrant {
        if (msg.value != 0) revert NativeNotAccepted();
        address owner = _ownerOf(id);
        if (owner == address(0)) revert TokenDoesNotExist();
        if (owner != from) revert TransferFromIncorrectOwner();
        if (!_isApprovedOrOwner(_msgSender(), id)) revert NotOwnerNorApproved();
        _transfer(address(0), from, to, id);
    }

    /// @notice ERC-721 approval of one ticket, for the (forwarded) caller.
    function approve(address account, uint256 id) public payable override {
        if (msg.value != 0) revert NativeNotAccepted();
        _approve(_msgSender(), account, id);
    }

    /// @notice ERC-721 approval of all the (forwarded) caller's tickets.
    function setApprovalForAll(address operator, bool isApproved) public override {
        _setApprovalForAll(_msgSender(), operator, isApproved);
    }

    // ---------------------------------------------------------------- door

    /// @notice Checks a ticket in at the door; it can never move, be listed or be checked in again.
    /// @dev Gate signers only, from doorsOpenAt. Reverts with NotGate, DoorsNotOpen,
    /// EventIsCancelled, TokenDoesNotExist or TicketCheckedIn.
    function checkIn(uint256 tokenId) external nonReentrant {
        _requireGateAndDoors();
        uint256 extra = _getExtraData(tokenId);
        if (extra & EXISTS == 0) revert TokenDoesNotExist();
        if (extra & CHECKED_IN != 0) revert TicketCheckedIn(tokenId);
        _setExtraData(tokenId, uint96(extra | CHECKED_IN));
        _ledger -= (extra & PAID_MASK) << OWED_SHIFT;
        emit CheckedIn(tokenId, _msgSender());
    }

    /// @notice Checks in many tickets at once (a scanner syncing its offline queue), emitting
    /// one CheckedInBatch with the tickets admitted. Tickets already checked in are skipped
    /// with a DuplicateCheckIn event, so one double entry does not undo a whole batch.
    /// @dev Gate signers only. Reverts with NotGate, DoorsNotOpen, EventIsCancelled or
    /// TokenDoesNotExist.
    /// @return admitted How many tickets this call checked in.
    function checkInBatch(uint256[] calldata tokenIds) external nonReentrant returns (uint256 admitted) {
        _requireGateAndDoors();
        uint256 released;
        uint256[] memory done = new uint256[](tokenIds.length);
        for (uint256 i; i < tokenIds.length; ++i) {
            uint256 id = tokenIds[i];
            uint256 extra = _getExtraData(id);
            if (extra & EXISTS == 0) revert TokenDoesNotExist();
            if (extra & CHECKED_IN != 0) {
                emit DuplicateCheckIn(id, _msgSender());
                continue;
            }
            _setExtraData(id, uint96(extra | CHECKED_IN));
            released += extra & PAID_MASK;
            done[admitted++] = id;
        }
        _ledger -= released << OWED_SHIFT;
        assembly {
            mstore(done, admitted) // shrink to the tickets admitted
        }
        emit CheckedInBatch(_msgSender(), done);
    }

    /// @notice Adds or removes a gate signer. Issuer only.
    function setGate(address gate, bool allowed) external {
        _requireIssuer();
        isGate[gate] = allowed;
        emit GateSet(gate, allowed);
    }

    // ---------------------------------------------------------------- cancellation and refunds

    /// @notice Adds to the pool that pays refunds if the event is cancelled (native coin as
    /// msg.value, or an ERC-20 amount drawn from the caller). Anyone may fund it.
    /// @dev Counts what actually arrived, so a fee-on-transfer token cannot overstate the pool.
    function fundRefunds(uint256 amount) external payable nonReentrant {
        _fundRefunds(_msgSender(), amount);
    }

    /// @notice Cancels the event. The refund pool must then cover every live ticket not yet
    /// checked in at the price last paid for it; `amount` more is drawn from the issuer first
    /// (or sent as msg.value for native events). Holders then claim with claimRefund.
    /// @dev Issuer only. Reverts with NotIssuer, EventIsCancelled or RefundsUnderfunded.
    function cancelEvent(uint256 amount) external payable nonReentrant {
        _requireIssuer();
        if (_settings.cancelled) revert EventIsCancelled();
        if (amount != 0 || msg.value != 0) _fundRefunds(_msgSender(), amount);
        uint256 owed = _ledger >> OWED_SHIFT;
        if (refundPool < owed) revert RefundsUnderfunded(owed, refundPool);
        _settings.cancelled = true;
        emit Cancelled(owed);
    }

    /// @notice After a cancellation, burns the caller's tickets and pays back what was last
    /// paid for each.
    /// @dev Ticket owners only. Reverts with EventNotCancelled, NotTicketOwner or
    /// TicketCheckedIn.
    function claimRefund(uint256[] calldata tokenIds) external nonReentrant {
        if (!_settings.cancelled) revert EventNotCancelled();
        address holder = _msgSender();
        uint256 total;
        for (uint256 i; i < tokenIds.length; ++i) {
            uint256 id = tokenIds[i];
            if (_ownerOf(id) != holder) revert NotTicketOwner(id, holder);
            uint256 paid = _getExtraData(id) & PAID_MASK;
            _burn(id);
            total += paid;
            emit Refunded(id, holder, paid);
        }
        _ledger -= total << OWED_SHIFT;
        refundPool -= total;
        _payOut(holder, total);
    }

    /// @notice Pays the issuer what the refund pool holds beyond what is still owed.
    /// @dev Issuer only, after cancellation.
    function withdrawRefundSurplus() external nonReentrant {
        _requireIssuer();
        if (!_settings.cancelled) revert EventNotCancelled();
        uint256 owed = _ledger >> OWED_SHIFT;
        uint256 surplus = refundPool - owed;
        if (surplus == 0) revert NothingToWithdraw();
        refundPool = owed;
        _payOut(_msgSender(), surplus);
    }

    /// @notice Withdraws payouts credited to the caller because a push to them failed.
    /// @param to Where to send them (a different address if the caller cannot receive).
    function withdraw(address to) external nonReentrant {
        address account = _msgSender();
        uint256 amount = credits[account];
        if (amount == 0) revert NothingToWithdraw();
        credits[account] = 0;
        emit Withdrawn(account, to, amount);
        if (currency == address(0)) {
            (bool ok,) = to.call{value: amount}("");
            if (!ok) revert PaymentFailed(to, amount);
        } else {
            IERC20(currency).safeTransfer(to, amount);
        }
    }

    // ---------------------------------------------------------------- views

    /// @notice The event's scalar settings.
    function settings() external view returns (Settings memory) {
        return _settings;
    }

    /// @notice A tier's face value, supply and tickets sold.
    function tierInfo(uint256 tier) external view returns (Tier memory) {
        if (tier >= _settings.tierCount) revert UnknownTier(tier);
        return _tiers[tier];
    }

    /// @notice The revenue-split parties, in order (the originator first).
    function splits() external view returns (Split[] memory out) {
        uint256 n = _settings.splitCount;
        out = new Split[](n);
        for (uint256 i; i < n; ++i) out[i] = _splits[i];
    }

    /// @notice The discount schedule.
    function discounts() external view returns (Discount[] memory out) {
        uint256 packed = _discounts;
        uint256 n;
        while (n < MAX_DISCOUNTS && (packed >> (56 * n)) & ((1 << 56) - 1) != 0) ++n;
        out = new Discount[](n);
        for (uint256 i; i < n; ++i) {
            uint256 e = packed >> (56 * i);
            out[i] = Discount({from: uint40(e), maxDiscountBps: uint16(e >> 40)});
        }
    }

    /// @notice The share of total supply each category may hold, in basis points.
    function categoryQuotaBps(uint8 category) public view returns (uint256) {
        if (category >= Category.COUNT) revert InvalidCategory(category);
        return (_quotas >> (16 * category)) & 0xffff;
    }

    /// @notice Live tickets whose holders were in `category` when they acquired them.
    function categoryCount(uint8 category) external view returns (uint256) {
        if (category >= Category.COUNT) revert InvalidCategory(category);
        return (_ledger >> (COUNT_BITS * category)) & COUNT_MASK;
    }

    /// @notice What a cancellation would have to refund now.
    function refundsOwed() external view returns (uint256) {
        return _ledger >> OWED_SHIFT;
    }

    /// @notice How many tickets `account` has acquired (bought, resale-bought or received).
    function acquired(address account) external view returns (uint256) {
        return uint32(_getAux(account));
    }

    /// @notice The current primary price of a tier, and the allowed resale range [floor, cap].
    function prices(uint256 tier) external view returns (uint256 primary, uint256 floor, uint256 cap) {
        if (tier >= _settings.tierCount) revert UnknownTier(tier);
        uint256 face = _tiers[tier].faceValue;
        floor = _floorPrice(face);
        return (floor, floor, face + (face * _settings.maxResaleMarkupBps) / BPS);
    }

    /// @notice One ticket's owner, tier, price paid, holder category, check-in and listing
    /// (none once checked in).
    function ticket(uint256 tokenId) external view returns (Ticket memory) {
        uint256 extra = _getExtraData(tokenId);
        return Ticket({
            owner: _ownerOf(tokenId),
            tier: tokenId >> SERIAL_BITS,
            paid: extra & PAID_MASK,
            category: uint8((extra >> CATEGORY_SHIFT) & 7),
            checkedIn: extra & CHECKED_IN != 0,
            // Check-in does not spend gas clearing a listing; a checked-in ticket is never for sale.
            listingPrice: extra & CHECKED_IN != 0 ? 0 : listingPrice[tokenId]
        });
    }

    /// @notice How a payment of `amount` is divided among the split parties (primary sale,
    /// or the non-seller part of a resale). The last party takes the rounding remainder, so
    /// the parts always sum to `amount`.
    function splitAmounts(uint256 amount) public view returns (uint256[] memory parts) {
        uint256 n = _settings.splitCount;
        parts = new uint256[](n);
        uint256 left = amount;
        for (uint256 i; i + 1 < n; ++i) {
            parts[i] = (amount * _splits[i].bps) / BPS;
            left -= parts[i];
        }
        parts[n - 1] = left;
    }

    /// @notice What the seller of a `tokenId` resale at `price` receives; the rest is split
    /// by `splitAmounts`.
    function resaleSellerAmount(uint256 tokenId, uint256 price) external view returns (uint256) {
        uint256 face = _tiers[tokenId >> SERIAL_BITS].faceValue;
        uint256 markup = price > face ? price - face : 0;
        return price - markup + (markup * _settings.sellerMarkupShareBps) / BPS;
    }

    /// @notice ERC-2981: on a sale at `salePrice`, the originator's due is the part of the
    /// markup over face value that the seller does not keep.
    /// @dev Hand-written rather than OpenZeppelin's ERC2981 because that one stores a fixed
    /// fraction of the price, while Stagepass's royalty depends on the ticket's face value.
    function royaltyInfo(uint256 tokenId, uint256 salePrice) external view returns (address receiver, uint256 royaltyAmount) {
        uint256 face = _tiers[tokenId >> SERIAL_BITS].faceValue;
        uint256 markup = salePrice > face ? salePrice - face : 0;
        return (_splits[0].account, markup - (markup * _settings.sellerMarkupShareBps) / BPS);
    }

    /// @notice The event's name (ERC-721 metadata).
    function name() public view override returns (string memory) {
        return _name;
    }

    /// @notice ERC-721 metadata symbol.
    function symbol() public pure override returns (string memory) {
        return "PASS";
    }

    /// @notice ERC-721 metadata URI: the event's base URI followed by the token id.
    function tokenURI(uint256 tokenId) public view override returns (string memory) {
        if (!_exists(tokenId)) revert TokenDoesNotExist();
        string memory base = baseURI;
        return bytes(base).length == 0 ? "" : string.concat(base, Strings.toString(tokenId));
    }

    /// @notice ERC-165: ERC-721, ERC-721 metadata, ERC-2981.
    function supportsInterface(bytes4 interfaceId) public view override returns (bool) {
        return interfaceId == 0x2a55205a || super.supportsInterface(interfaceId);
    }

    // ---------------------------------------------------------------- the choke point

    /// @dev Every mint, transfer and burn comes here first. Transfers and mints: nothing after
    /// resaleClosesAt or cancellation; plain transfers only if gifts are allowed; the receiver
    /// within maxPerBuyer and their category within its quota. All moves: a checked-in ticket
    /// never moves; a listing is cleared.
    function _beforeTokenTransfer(address from, address to, uint256 id) internal override {
        uint256 ledger = _ledger;
        if (from != address(0)) {
            uint256 extra = _getExtraData(id);
            if (extra & CHECKED_IN != 0) revert TicketCheckedIn(id);
            if (listingPrice[id] != 0) {
                delete listingPrice[id];
                emit Unlisted(id);
            }
            ledger -= 1 << (COUNT_BITS * ((extra >> CATEGORY_SHIFT) & 7));
            if (to == address(0)) _setExtraData(id, uint96(extra & ~EXISTS));
        }
        if (to != address(0)) {
            if (from == to) revert SelfTransfer();
            Settings memory st = _settings;
            if (st.cancelled) revert EventIsCancelled();
            if (block.timestamp >= st.resaleClosesAt) revert SalesClosed(st.resaleClosesAt);
            if (from != address(0) && !_marketMove && !st.giftsAllowed) revert GiftsNotAllowed();

            uint224 aux = _getAux(to);
            if (uint32(aux) >= st.maxPerBuyer) revert BuyerLimitReached(to, st.maxPerBuyer);
            _setAux(to, aux + 1);

            uint8 cat = _categoryOf(to);
            if (from == address(0)) _checkPresale(cat);
            uint256 quota = (uint256(st.totalSupply) * ((_quotas >> (16 * cat)) & 0xffff)) / BPS;
            if (((ledger >> (COUNT_BITS * cat)) & COUNT_MASK) >= quota) revert CategoryQuotaReached(cat, quota);
            ledger += 1 << (COUNT_BITS * cat);
            uint256 extra = _getExtraData(id);
            _setExtraData(id, uint96((extra & ~((uint256(7) << CATEGORY_SHIFT) | CARD_FRESH)) | (uint256(cat) << CATEGORY_SHIFT)));
        }
        _ledger = ledger;
    }

    // ---------------------------------------------------------------- internals

    /// @dev Reverts with PresaleOnly when a buyer of category `cat` may not buy new tickets yet.
    function _checkPresale(uint8 cat) internal view {
        if (block.timestamp < presaleEndsAt) {
            uint256 opens = cat == Category.FAN ? superfanPresaleEndsAt : presaleEndsAt;
            if (cat != Category.SUPERFAN && block.timestamp < opens) revert PresaleOnly(cat, opens);
        }
    }

    function _categoryOf(address account) internal view returns (uint8 cat) {
        address registry = categoryRegistry;
        if (registry == address(0)) return Category.UNCLASSIFIED;
        cat = ICategoryRegistry(registry).categoryOf(account);
        if (cat >= Category.COUNT) revert InvalidCategory(cat);
    }

    /// @dev Lowest price allowed now for a ticket of face value `face`: the primary price, and
    /// the floor of the resale range.
    function _floorPrice(uint256 face) internal view returns (uint256) {
        uint256 packed = _discounts;
        uint256 bps;
        for (uint256 i; i < MAX_DISCOUNTS; ++i) {
            uint256 e = (packed >> (56 * i)) & ((1 << 56) - 1);
            if (e == 0 || block.timestamp < uint40(e)) break;
            bps = e >> 40;
        }
        return face - (face * bps) / BPS;
    }

    /// @dev Reverts unless `price` is within [floor, cap] now; returns the ticket's face value.
    function _checkResalePrice(uint256 tokenId, uint256 price) internal view returns (uint256 face) {
        face = _tiers[tokenId >> SERIAL_BITS].faceValue;
        uint256 floor = _floorPrice(face);
        uint256 cap = face + (face * _settings.maxResaleMarkupBps) / BPS;
        if (price < floor || price > cap || price == 0 || price > PAID_MASK) revert PriceOutOfRange(price, floor, cap);
    }

    function _requireOpen() internal view {
        Settings memory st = _settings;
        if (st.cancelled) revert EventIsCancelled();
        if (block.timestamp >= st.resaleClosesAt) revert SalesClosed(st.resaleClosesAt);
    }

    function _requireIssuer() internal view {
        if (_msgSender() != issuer) revert NotIssuer(_msgSender());
    }

    function _requireGateAndDoors() internal view {
        if (!isGate[_msgSender()]) revert NotGate(_msgSender());
        Settings memory st = _settings;
        if (st.cancelled) revert EventIsCancelled();
        if (block.timestamp < st.doorsOpenAt) revert DoorsNotOpen(st.doorsOpenAt);
    }

    /// @dev For native-coin events, the buyer's msg.value must be exactly `total`; ERC-20
    /// events take no native coin (the parties are paid straight from the buyer's allowance).
    function _takePayment(address, uint256 total) internal view {
        if (currency == address(0)) {
            if (msg.value != total) revert IncorrectPayment(total, msg.value);
        } else if (msg.value != 0) {
            revert NativeNotAccepted();
        }
    }

    /// @dev Splits `amount` among the parties by basis points and pays each.
    function _payParties(address payer, uint256 amount) internal {
        uint256 n = _settings.splitCount;
        uint256 left = amount;
        for (uint256 i; i < n; ++i) {
            Split storage s = _splits[i];
            uint256 part = i + 1 == n ? left : (amount * s.bps) / BPS;
            left -= part;
            _pay(payer, s.account, part);
        }
    }

    /// @dev Pays one party in real time. A push that fails — a recipient that rejects native
    /// coin or an ERC-20 that refuses the transfer — never blocks the sale: the amount is kept
    /// here and credited to the recipient, who withdraws it.
    function _pay(address payer, address to, uint256 amount) internal {
        if (amount == 0) return;
        address token = currency;
        if (token == address(0)) {
            (bool ok,) = to.call{value: amount, gas: PUSH_GAS}("");
            if (!ok) _credit(to, amount);
        } else if (!IERC20(token).trySafeTransferFrom(payer, to, amount)) {
            _credit(to, _pull(payer, amount));
        }
    }

    function _credit(address to, uint256 amount) internal {
        credits[to] += amount;
        emit Credited(to, amount);
    }

    /// @dev Draws `amount` of the ERC-20 from `payer` into this contract; returns what arrived.
    function _pull(address payer, uint256 amount) internal returns (uint256) {
        IERC20 token = IERC20(currency);
        uint256 before = token.balanceOf(address(this));
        token.safeTransferFrom(payer, address(this), amount);
        return token.balanceOf(address(this)) - before;
    }

    function _fundRefunds(address from, uint256 amount) internal {
        uint256 received;
        if (currency == address(0)) {
            if (msg.value != amount) revert IncorrectPayment(amount, msg.value);
            received = amount;
        } else {
            if (msg.value != 0) revert NativeNotAccepted();
            received = _pull(from, amount);
        }
        refundPool += received;
        emit RefundsFunded(from, received);
    }

    /// @dev Pays `amount` from this contract's own holdings, crediting it if a push fails.
    function _payOut(address to, uint256 amount) internal {
        if (amount == 0) return;
        address token = currency;
        if (token == address(0)) {
            (bool ok,) = to.call{value: amount, gas: PUSH_GAS}("");
            if (!ok) _credit(to, amount);
        } else if (!IERC20(token).trySafeTransfer(to, amount)) {
            _credit(to, amount);
        }
    }
}
